"""One shared suite for both stores: the local directory and S3 (under moto)."""

from __future__ import annotations

import threading

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from functions.storage import KeyNotFound, LocalStore, S3Store, Store, store_from_env, ws_key


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch) -> Store:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="growthlens-test")
        yield S3Store("growthlens-test", prefix="env1", client=client)


def test_bytes_roundtrip_and_replace(store: Store) -> None:
    key = ws_key("acme", "a", "b.bin")
    assert not store.exists(key)
    store.write_bytes(key, b"one")
    assert store.exists(key)
    assert store.read_bytes(key) == b"one"
    store.write_bytes(key, b"two")
    assert store.read_bytes(key) == b"two"


def test_missing_key_raises_keynotfound(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        store.read_bytes(ws_key("acme", "nope.json"))


def test_json_and_table(store: Store) -> None:
    k = ws_key("acme", "doc.json")
    store.write_json(k, {"when": pd.Timestamp("2024-01-02"), "n": 3, "xs": [1.5, 2.5]})
    assert store.read_json(k) == {"when": "2024-01-02T00:00:00", "n": 3, "xs": [1.5, 2.5]}
    df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=3), "spend": [1.0, 2.0, 3.5]})
    t = ws_key("acme", "t.parquet")
    store.write_table(t, df)
    pd.testing.assert_frame_equal(store.read_table(t), df, check_dtype=False)


def test_list_is_scoped_and_sorted(store: Store) -> None:
    for k in ["workspaces/a/x/1", "workspaces/a/x/2", "workspaces/ab/x/1", "workspaces/b/y"]:
        store.write_bytes(k, b".")
    assert store.list("workspaces/a/") == ["workspaces/a/x/1", "workspaces/a/x/2"]
    assert store.list("workspaces/a") == ["workspaces/a/x/1", "workspaces/a/x/2", "workspaces/ab/x/1"]
    assert store.list("workspaces/zzz/") == []


def test_delete_and_delete_prefix(store: Store) -> None:
    store.write_bytes("workspaces/a/1", b"1")
    store.write_bytes("workspaces/a/2", b"2")
    store.delete("workspaces/a/1")
    store.delete("workspaces/a/missing")  # no error
    assert store.list("workspaces/a/") == ["workspaces/a/2"]
    assert store.delete_prefix("workspaces/a/") == 1
    assert store.list("workspaces/") == []


def test_keys_cannot_escape(store: Store) -> None:
    with pytest.raises(ValueError):
        store.write_bytes("workspaces/../../etc/passwd", b"x")
    with pytest.raises(ValueError):
        ws_key("..", "x")
    with pytest.raises(ValueError):
        ws_key("acme", "a//b")


def test_workspaces_are_isolated(store: Store) -> None:
    store.write_json(ws_key("one", "k.json"), {"v": 1})
    store.write_json(ws_key("two", "k.json"), {"v": 2})
    assert store.read_json(ws_key("one", "k.json")) == {"v": 1}
    assert store.list(ws_key("two") + "/") == [ws_key("two", "k.json")]


def test_local_writes_are_atomic_under_concurrent_readers(tmp_path) -> None:
    """Readers racing a writer only ever see a complete old or new value."""
    store = LocalStore(tmp_path)
    key = "workspaces/a/big.bin"
    a, b = b"a" * 2_000_000, b"b" * 2_000_000
    store.write_bytes(key, a)
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = store.read_bytes(key)
            seen.add(data[:1] + data[-1:] + str(len(data)).encode())

    t = threading.Thread(target=reader)
    t.start()
    for i in range(20):
        store.write_bytes(key, b if i % 2 == 0 else a)
    stop.set()
    t.join()
    assert seen <= {b"aa2000000", b"bb2000000"}
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_store_from_env(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "d"))
    s = store_from_env()
    assert isinstance(s, LocalStore) and s.root == (tmp_path / "d").resolve()
    monkeypatch.setenv("GROWTHLENS_BUCKET", "bkt")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert isinstance(store_from_env(), S3Store)
