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


# ------------------------------------------------------------------------------------ leases and killed workers
def _stall_once(store, workspace, params, progress):
    """Runs forever while the flag file exists (the first attempt, which the test kills), else returns."""
    import time
    from pathlib import Path

    progress(0.1, "working")
    while Path(params["flag"]).exists():
        time.sleep(0.05)
    return {"attempt_ok": True}


def _run_in_child(root: str, job_id: str) -> None:
    """A worker process: run the job (``python -c``, so the test can SIGKILL it)."""
    jobs.KINDS["stall"] = f"{__name__}:_stall_once"
    jobs.run_job(LocalStore(root), "ws", job_id)


def _start_and_kill_worker(tmp_path, store, doc) -> float:
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; from tests.functions.test_jobs import _run_in_child; "
            "_run_in_child(sys.argv[1], sys.argv[2])")
    env = {**os.environ, "PYTHONPATH": str(root), "GROWTHLENS_JOB_LEASE_SECONDS": "30"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(store.root), doc["id"]], cwd=root, env=env)
    for _ in range(2000):  # until the worker has claimed the job
        cur = store.read_json(f"workspaces/ws/jobs/{doc['id']}.json")
        if cur["status"] == "running" and cur.get("message") == "working":
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    cur = store.read_json(f"workspaces/ws/jobs/{doc['id']}.json")
    assert cur["status"] == "running"  # as the dead worker left it
    return float(cur["lease_until"])


def test_a_killed_workers_job_is_retried_then_done(tmp_path, monkeypatch) -> None:
    """A worker process killed with SIGKILL mid-job stops renewing the lease; once it expires, the next reader
    dispatches the job again and it completes (never "running" for good)."""
    monkeypatch.setitem(jobs.KINDS, "stall", f"{__name__}:_stall_once")
    monkeypatch.delenv("GROWTHLENS_JOBS_QUEUE_URL", raising=False)
    store = LocalStore(tmp_path / "s")
    flag = tmp_path / "flag"
    flag.write_text("stall")
    doc = _record_only(store, "stall", {"flag": str(flag)})
    lease = _start_and_kill_worker(tmp_path, store, doc)
    assert jobs.get_job(store, "ws", doc["id"], now=lease - 1)["status"] == "running"  # lease still valid
    flag.unlink()  # the retry will not stall
    retried = jobs.get_job(store, "ws", doc["id"], now=lease + 1)
    assert retried["status"] == "queued" and "worker stopped" in retried["message"]
    jobs.wait_local()
    done = jobs.get_job(store, "ws", doc["id"])
    assert done["status"] == "done" and done["result"] == {"attempt_ok": True} and done["attempts"] == 2


def _record_only(store, kind: str, params: dict) -> dict:
    """A recorded job that no local pool runs (as if its message sat in a queue)."""
    import time

    doc = {"id": f"j{time.time_ns()}", "kind": kind, "params": params, "status": "queued", "progress": 0.0,
           "message": "queued", "created_at": "", "updated_at": "", "result": None, "error": None, "attempts": 0,
           "lease_until": time.time() + 3600}
    store.write_json(f"workspaces/ws/jobs/{doc['id']}.json", doc)
    return doc


def test_a_job_whose_workers_keep_dying_fails_with_the_reason(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(jobs.KINDS, "stall", f"{__name__}:_stall_once")
    store = LocalStore(tmp_path / "s")
    flag = tmp_path / "flag"
    flag.write_text("stall")
    doc = _record_only(store, "stall", {"flag": str(flag)})
    doc["attempts"] = jobs.MAX_ATTEMPTS - 1
    store.write_json(f"workspaces/ws/jobs/{doc['id']}.json", doc)
    lease = _start_and_kill_worker(tmp_path, store, doc)  # the last attempt dies too
    failed = jobs.get_job(store, "ws", doc["id"], now=lease + 1)
    assert failed["status"] == "failed" and "worker stopped" in failed["error"]
    assert f"after {jobs.MAX_ATTEMPTS} attempts" in failed["error"]


def test_at_most_one_fit_per_data_version_and_bounded_parameters(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(jobs.KINDS, "mmm_fit", f"{__name__}:_stall_once")
    monkeypatch.delenv("GROWTHLENS_JOBS_QUEUE_URL", raising=False)
    store = LocalStore(tmp_path / "s")
    flag = tmp_path / "flag"
    flag.write_text("stall")
    first = jobs.submit(store, "ws", "mmm_fit", {"version": "v1", "flag": str(flag)})
    again = [jobs.submit(store, "ws", "mmm_fit", {"version": "v1", "flag": str(flag), "seed": i}) for i in range(5)]
    assert {j["id"] for j in again} == {first["id"]}  # the one in flight, not five more
    other = jobs.submit(store, "ws", "mmm_fit", {"version": "v2", "flag": str(flag)})
    assert other["id"] != first["id"]  # another data version is another fit
    with pytest.raises(ValueError, match="n_boot"):
        jobs.submit(store, "ws", "mmm_fit", {"version": "v3", "n_boot": 1000})
    with pytest.raises(ValueError, match="n_boot"):
        jobs.submit(store, "ws", "mmm_fit", {"version": "v3", "n_boot": float("nan")})
    flag.unlink()
    jobs.wait_local()
    assert jobs.get_job(store, "ws", first["id"])["status"] == "done"
    later = jobs.submit(store, "ws", "mmm_fit", {"version": "v1", "flag": str(flag)})
    assert later["id"] != first["id"]  # once done, a refit may start
    jobs.wait_local()
