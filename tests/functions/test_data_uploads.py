"""Large files through an upload: a too-large import gets a 413 naming the upload route; POST /api/data/uploads
returns a presigned S3 PUT (under moto) or the local upload route; the import from an upload runs the same
importers as a direct one."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

import functions.deps as deps
import functions.routers.data as data_router
from functions.app import create_app
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS, TEST_API_KEY
from tests.functions.test_data_api import _kpis, _long

API_KEY = TEST_API_KEY


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GROWTHLENS_API_KEY", API_KEY)
    for var in ("GROWTHLENS_BUCKET", "GROWTHLENS_WORKSPACE", "GROWTHLENS_CDP_REFRESH", "GROWTHLENS_JOBS_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    deps._store.cache_clear()
    monkeypatch.setattr(data_router, "start_model", lambda store, ws: "job-1")
    yield TestClient(create_app(["data", "sync"]), headers=AUTH_HEADERS), LocalStore(tmp_path)
    deps._store.cache_clear()


def _upload(client: TestClient, name: str, body: str | bytes, ctype: str | None = "text/csv") -> str:
    r = client.post("/api/data/uploads", json={"filename": name, **({"content_type": ctype} if ctype else {})})
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["method"] == "PUT" and up["then"] == {"method": "POST", "path": "/api/data/import",
                                                    "json": {"upload_id": up["upload_id"]}}
    put = client.put(up["path"], content=body.encode() if isinstance(body, str) else body, headers=up["headers"])
    assert put.status_code == 200 and put.json()["bytes"] == len(body), put.text
    return up["upload_id"]


def test_a_too_large_import_is_a_413_that_names_the_upload_route(env, monkeypatch):
    client, store = env
    monkeypatch.setenv("GROWTHLENS_MAX_UPLOAD_BYTES", "200")
    r = client.post("/api/data/import", files=[("files", ("m.csv", _long(), "text/csv"))])
    assert r.status_code == 413
    assert "POST /api/data/uploads" in r.json()["detail"] and '"upload_id"' in r.json()["detail"]
    r = client.post("/api/sync/shopify/batch", content=b"[" + b"1," * 200 + b"1]",
                    headers={"Content-Type": "application/json", "X-Growthlens-Api-Key": API_KEY})
    assert r.status_code == 413 and "/api/sync/shopify/batch?upload_id=" in r.json()["detail"]
    assert store.list("") == []


def test_local_upload_then_import_equals_the_direct_import(env, tmp_path):
    client, store = env
    up = client.post("/api/data/uploads", json={"filename": "marketing.csv"}).json()
    assert up["url"] == f"http://testserver/api/data/uploads/{up['upload_id']}" and up["headers"] == {}
    ids = [_upload(client, "marketing.csv", _long()), _upload(client, "kpis.csv", _kpis())]
    dry = client.post("/api/data/import", json={"upload_ids": ids, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["version"] is None
    r = client.post("/api/data/import", json={"upload_ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tables"] == {"kpis": 10, "marketing": 20} and body["model_job"] == "job-1"
    direct = TestClient(create_app(["data"]), headers=AUTH_HEADERS).post(
        "/api/data/import", data={"dry_run": "true"},
        files=[("files", ("marketing.csv", _long(), "text/csv")), ("files", ("kpis.csv", _kpis(), "text/csv"))])
    assert {k: body[k] for k in ("tables", "channels", "start_date", "end_date", "files")} == {
        k: direct.json()[k] for k in ("tables", "channels", "start_date", "end_date", "files")}
    assert not [k for k in store.list("") if any(u in k for u in ids)]  # a publishing import deletes its uploads
    again = client.post("/api/data/import", json={"upload_id": ids[0]})
    assert again.status_code == 404 and "no upload" in again.json()["detail"]


def test_a_rejected_upload_import_lists_problems_and_keeps_the_upload(env):
    client, store = env
    uid = _upload(client, "m.csv", _long().replace("2025-01-03,Google Ads,120", "2025-01-03,Google Ads,-120"))
    r = client.post("/api/data/import", json={"upload_id": uid, "format": "long"})
    assert r.status_code == 422
    assert {"file": "m.csv", "row": 6, "column": "spend", "problem": "spend is negative (-120)"} in \
        r.json()["detail"]["problems"]
    assert store.exists(f"workspaces/default/uploads/{uid}/data") and not store.list("workspaces/default/datasets")


@pytest.mark.parametrize("payload,status", [
    ({"upload_id": "not-hex"}, 422), ({}, 422), ({"upload_id": "0" * 32}, 404),
    ({"upload_id": "0" * 32, "surprise": 1}, 422), ({"upload_id": "0" * 32, "format": "diagonal"}, 422),
])
def test_bad_upload_imports_are_4xx(env, payload, status):
    client, _ = env
    r = client.post("/api/data/import", json=payload)
    assert r.status_code == status, r.text


def test_upload_limits_names_and_expiry(env, monkeypatch):
    client, store = env
    assert client.post("/api/data/uploads", json={"filename": "../../etc/passwd"}).status_code == 201  # basename
    assert client.post("/api/data/uploads", json={"filename": "a/.."}).status_code == 422
    assert client.post("/api/data/uploads", json={"filename": "x" * 300}).status_code == 422
    up = client.post("/api/data/uploads", json={"filename": "m.csv"}).json()
    r = client.post("/api/data/import", json={"upload_id": up["upload_id"]})
    assert r.status_code == 404 and "has no file yet" in r.json()["detail"]
    monkeypatch.setenv("GROWTHLENS_MAX_STORED_UPLOAD_BYTES", "1000")
    r = client.put(up["path"], content=b"x" * 5000)
    assert r.status_code == 413
    assert not store.exists(f"workspaces/default/uploads/{up['upload_id']}/data")

    def chunks():  # no Content-Length: counted as it streams, the partial file removed
        for _ in range(10):
            yield b"y" * 400

    assert client.put(up["path"], content=chunks()).status_code == 413
    assert [k for k in store.list("") if up["upload_id"] in k] == [f"workspaces/default/uploads/{up['upload_id']}"
                                                                  "/upload.json"]
    assert client.put(f"/api/data/uploads/{'0' * 32}", content=b"a").status_code == 404
    monkeypatch.setenv("GROWTHLENS_UPLOAD_TTL_SECONDS", "-1")
    late = client.post("/api/data/uploads", json={"filename": "m.csv"}).json()
    r = client.put(late["path"], content=b"a,b\n")
    assert r.status_code == 410 and "expired" in r.json()["detail"]


def test_a_batch_export_from_an_upload(env):
    client, store = env
    orders = [{"id": 1001 + i, "email": f"c{i}@example.com", "created_at": "2024-03-01T10:15:00-05:00",
               "updated_at": "2024-03-01T10:20:00-05:00", "total_price": "64.00", "financial_status": "paid",
               "customer": {"id": 40 + i, "email": f"c{i}@example.com", "first_name": "Ann", "last_name": "Lee"},
               "line_items": [{"id": 1, "title": "Serum", "quantity": 1, "price": "64.00"}]} for i in range(3)]
    uid = _upload(client, "orders.json", json.dumps(orders), "application/json")
    url = f"/api/sync/shopify/batch?topic=orders&upload_id={uid}"
    assert TestClient(client.app).post(url).status_code == 401  # no body to sign: the API key is required
    r = client.post(url, headers={"X-Growthlens-Api-Key": API_KEY})
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    assert not [k for k in store.list("") if "/uploads/" in k]
    nested = _upload(client, "deep.json", "[" * 5000, "application/json")
    r = client.post(f"/api/sync/shopify/batch?upload_id={nested}", headers={"X-Growthlens-Api-Key": API_KEY})
    assert r.status_code == 400 and "nests 5000 levels" in r.json()["detail"]


def test_presigned_s3_put_then_import_under_moto(tmp_path, monkeypatch):
    """Deployed: the URL is a SigV4 presigned PUT to the bucket (content type signed); the object PUT with it (by
    ``requests``, served by moto) is imported from S3, and the upload is deleted afterwards."""
    import boto3
    import requests
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "GROWTHLENS_BUCKET": "growthlens-uploads",
                 "GROWTHLENS_S3_PREFIX": "env1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    monkeypatch.setattr(data_router, "start_model", lambda store, ws: None)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="growthlens-uploads")
        deps._store.cache_clear()
        try:
            client = TestClient(create_app(["data"]), headers=AUTH_HEADERS)
            ids = []
            for name, body in (("marketing.csv", _long()), ("kpis.csv", _kpis())):
                up = client.post("/api/data/uploads", json={"filename": name, "content_type": "text/csv"}).json()
                url = urlparse(up["url"])
                q = parse_qs(url.query)
                assert url.scheme == "https" and "path" not in up
                assert url.path == f"/growthlens-uploads/env1/workspaces/default/uploads/{up['upload_id']}/data"
                assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and q["X-Amz-Expires"] == ["900"]
                assert q["X-Amz-SignedHeaders"] == ["content-type;host"] and up["headers"] == {
                    "Content-Type": "text/csv"}
                assert client.put(f"/api/data/uploads/{up['upload_id']}", content=b"x").status_code == 409
                put = requests.put(up["url"], data=body.encode(), headers=up["headers"], timeout=10)
                assert put.status_code == 200, put.text
                ids.append(up["upload_id"])
            r = client.post("/api/data/import", json={"upload_ids": ids})
            assert r.status_code == 200, r.text
            assert r.json()["tables"] == {"kpis": 10, "marketing": 20}
            keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="growthlens-uploads")["Contents"]]
            assert any(k.startswith("env1/workspaces/default/datasets/") for k in keys)
            assert not [k for k in keys if "/uploads/" in k]
            assert client.get("/api/data").json()["tables"]["marketing"]["rows"] == 20
        finally:
            deps._store.cache_clear()
