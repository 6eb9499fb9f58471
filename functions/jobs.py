"""Background jobs: long work (a model fit, a profile rebuild) answered at once with a job id.

A job is a JSON document in the store (``workspaces/{ws}/jobs/{id}.json``) with status ``queued → running →
done|failed``, a progress fraction and message, and the result (or the error). Where the work runs:

* locally (no ``GROWTHLENS_JOBS_QUEUE_URL``): in a small thread pool inside the API process;
* on AWS: the message goes to an SQS queue and the ``jobs`` Lambda (``functions.handlers.jobs``) runs it; failed
  messages are retried and then land in the dead-letter queue (template.yaml).

Job kinds map to functions by dotted path in :data:`KINDS`; a job function has the signature
``fn(store, workspace, params, progress) -> dict`` where ``progress(fraction, message)`` records progress.
Jobs are idempotent: re-running one recomputes and overwrites the same results.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from functions.storage import KeyNotFound, Store, ws_key

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
JobFn = Callable[[Store, str, dict[str, Any], Progress], dict[str, Any]]

#: job kind → "module:function"
KINDS: dict[str, str] = {
    "mmm_fit": "functions.mmm_service:fit_job",
    "cdp_refresh": "functions.cdp_store:refresh_job",
}

_POOL: ThreadPoolExecutor | None = None


class JobNotFound(LookupError):
    """No job with that id in the workspace."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _key(workspace: str, job_id: str) -> str:
    return ws_key(workspace, "jobs", f"{job_id}.json")


def resolve_kind(kind: str) -> JobFn:
    """The function behind a job kind, or ``ValueError`` naming the known kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def get_job(store: Store, workspace: str, job_id: str) -> dict[str, Any]:
    """The job document."""
    try:
        return store.read_json(_key(workspace, job_id))
    except (KeyNotFound, ValueError) as e:
        raise JobNotFound(f"no job {job_id!r}") from e


def _update(store: Store, workspace: str, job_id: str, **fields: Any) -> dict[str, Any]:
    doc = get_job(store, workspace, job_id)
    doc.update(fields, updated_at=_now())
    store.write_json(_key(workspace, job_id), doc)
    return doc


def submit(store: Store, workspace: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Record a queued job and dispatch it; return the job document (with its ``id``)."""
    resolve_kind(kind)  # fail fast on an unknown kind
    job_id = uuid.uuid4().hex[:16]
    doc = {
        "id": job_id,
        "kind": kind,
        "params": params,
        "status": "queued",
        "progress": 0.0,
        "message": "queued",
        "created_at": _now(),
        "updated_at": _now(),
        "result": None,
        "error": None,
    }
    store.write_json(_key(workspace, job_id), doc)
    queue_url = os.environ.get("GROWTHLENS_JOBS_QUEUE_URL")
    if queue_url:
        import boto3

        boto3.client("sqs").send_message(
            QueueUrl=queue_url, MessageBody=json.dumps({"workspace": workspace, "job_id": job_id})
        )
    else:
        global _POOL
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("GROWTHLENS_JOB_WORKERS", "1")))
        _POOL.submit(run_job, store, workspace, job_id)
    return doc


def run_job(store: Store, workspace: str, job_id: str) -> dict[str, Any]:
    """Run a recorded job to completion, recording progress, result or error. Returns the final document."""
    doc = get_job(store, workspace, job_id)
    if doc["status"] == "done":  # a redelivered message: nothing to do
        return doc
    _update(store, workspace, job_id, status="running", message="started", started_at=_now())

    def progress(fraction: float, message: str) -> None:
        _update(store, workspace, job_id, progress=round(float(fraction), 4), message=message)

    try:
        result = resolve_kind(doc["kind"])(store, workspace, doc["params"], progress)
    except ValueError as e:
        return _update(store, workspace, job_id, status="failed", error=str(e), message="failed")
    except Exception as e:  # noqa: BLE001 - a job must record any failure instead of dying silently
        log.error("job %s failed: %s", job_id, traceback.format_exc())
        return _update(store, workspace, job_id, status="failed", error=f"{type(e).__name__}: {e}",
                       message="failed")
    return _update(store, workspace, job_id, status="done", progress=1.0, message="done", result=result,
                   finished_at=_now())


def wait_local(timeout: float = 600) -> None:
    """Wait for the local pool's queued jobs (CLI and tests)."""
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=True)
        _POOL = None
