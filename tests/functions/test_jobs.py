"""Jobs run locally in a thread pool, or through SQS (moto) and the job_worker Lambda handler."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from functions import jobs
from functions.handlers import job_worker
from functions.storage import LocalStore


def _double(store, workspace, params, progress):
    progress(0.5, "halfway")
    if params.get("fail"):
        raise ValueError("bad parameter 'fail'")
    if params.get("crash"):
        raise RuntimeError("boom")
    return {"value": params["x"] * 2}


@pytest.fixture
def kinds(monkeypatch):
    monkeypatch.setitem(jobs.KINDS, "double", f"{__name__}:_double")
    monkeypatch.delenv("GROWTHLENS_JOBS_QUEUE_URL", raising=False)


def test_local_job_runs_to_done(tmp_path, kinds) -> None:
    store = LocalStore(tmp_path)
    doc = jobs.submit(store, "ws", "double", {"x": 21})
    assert doc["status"] == "queued"
    jobs.wait_local()
    done = jobs.get_job(store, "ws", doc["id"])
    assert done["status"] == "done" and done["result"] == {"value": 42} and done["progress"] == 1.0


@pytest.mark.parametrize("params,error", [({"fail": 1}, "bad parameter 'fail'"), ({"crash": 1}, "RuntimeError: boom")])
def test_failures_are_recorded(tmp_path, kinds, params, error) -> None:
    store = LocalStore(tmp_path)
    doc = jobs.submit(store, "ws", "double", params)
    jobs.wait_local()
    failed = jobs.get_job(store, "ws", doc["id"])
    assert failed["status"] == "failed" and failed["error"] == error


def test_unknown_kind_and_job(tmp_path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(ValueError, match="unknown job kind 'nope'"):
        jobs.submit(store, "ws", "nope", {})
    with pytest.raises(jobs.JobNotFound):
        jobs.get_job(store, "ws", "missing")


def test_sqs_dispatch_and_worker(tmp_path, kinds, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions import deps

    deps._store.cache_clear()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        monkeypatch.setenv("GROWTHLENS_JOBS_QUEUE_URL", url)
        store = deps.get_store()
        doc = jobs.submit(store, "ws", "double", {"x": 5})
        assert jobs.get_job(store, "ws", doc["id"])["status"] == "queued"  # nothing ran in-process
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(msgs) == 1 and json.loads(msgs[0]["Body"]) == {"workspace": "ws", "job_id": doc["id"]}
        event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in msgs]
                 + [{"messageId": "broken", "body": "not json"}]}
        out = job_worker(event, None)
        assert out == {"batchItemFailures": [{"itemIdentifier": "broken"}]}
        assert jobs.get_job(store, "ws", doc["id"])["result"] == {"value": 10}
    deps._store.cache_clear()
