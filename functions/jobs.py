"""Background jobs: long work (a model fit, a profile refresh) answered at once with a job id.

A job is a JSON document in the store (``workspaces/{ws}/jobs/{id}.json``) with status ``queued → running →
done|failed``, a progress fraction and message, and the result (or the error). Where the work runs:

* locally (no ``GROWTHLENS_JOBS_QUEUE_URL``): in a small thread pool inside the API process;
* on AWS: the message goes to an SQS queue (FIFO: one message group per workspace and kind, so a workspace's
  refreshes run one at a time) and the ``jobs`` Lambda (``functions.handlers.job_worker``) runs it.

Jobs cannot get stuck: a queued or running job holds a **lease** (``lease_until``) that the process holding it
renews by a heartbeat thread; a worker that dies (a restart, ``kill -9``, a Lambda timeout) stops renewing. Any
reader (:func:`get_job`, a new submit) that finds a lease expired retries the job (up to :data:`MAX_ATTEMPTS`
runs) or marks it failed with the reason. Every change of a job document is a conditional update
(:meth:`functions.storage.Store.update_json`), so a worker and a reaper never overwrite each other, and only the
worker whose claim won runs the job.

At most one job per :data:`SINGLETONS` key is in flight: one fit per workspace and data version, one queued
refresh per workspace; a submit while one is in flight returns that job. Costly parameters are bounded
(:data:`LIMITS`). Job kinds map to functions by dotted path in :data:`KINDS`, with the signature
``fn(store, workspace, params, progress) -> dict``; jobs are idempotent (a retry recomputes the same results).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from functions.storage import UNCHANGED, KeyNotFound, Store, ws_key

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
JobFn = Callable[[Store, str, dict[str, Any], Progress], dict[str, Any]]

#: job kind → "module:function"
KINDS: dict[str, str] = {
    "mmm_fit": "functions.mmm_service:fit_job",
    "cdp_refresh": "functions.cdp.refresh:refresh_job",
}

#: kind → (key of the job's in-flight slot from its params, statuses that hold the slot)
SINGLETONS: dict[str, tuple[Callable[[dict[str, Any]], str], frozenset[str]]] = {
    "mmm_fit": (lambda p: f"mmm_fit-{p.get('version', 'current')}", frozenset({"queued", "running"})),
    # a running refresh may have listed the log already: only a queued one is sure to see new events
    "cdp_refresh": (lambda p: "cdp_refresh", frozenset({"queued"})),
}

#: kind → {parameter: (lowest, highest)}; the highest of ``n_boot`` is ``GROWTHLENS_MAX_N_BOOT`` (default 200)
LIMITS: dict[str, dict[str, tuple[float, float]]] = {
    "mmm_fit": {"n_boot": (20, float(os.environ.get("GROWTHLENS_MAX_N_BOOT", "200"))),
                "seed": (0, 2**32 - 1), "target_roas": (1e-3, 100.0)},
}

MAX_ATTEMPTS = 3
PROCESS = uuid.uuid4().hex[:12]  # this process, as recorded in the jobs it holds

_POOL: ThreadPoolExecutor | None = None
_HELD: dict[tuple[int, str, str], Store] = {}
_HELD_LOCK = threading.Lock()
_BEAT: threading.Thread | None = None


class JobNotFound(LookupError):
    """No job with that id in the workspace."""


def lease_seconds() -> float:
    """How long a job's lease lasts without a heartbeat (``GROWTHLENS_JOB_LEASE_SECONDS``, default 120)."""
    return float(os.environ.get("GROWTHLENS_JOB_LEASE_SECONDS", "120"))


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


def check_params(kind: str, params: dict[str, Any]) -> None:
    """``ValueError`` naming the parameter when a costly or numeric parameter is out of its bounds."""
    for name, (lo, hi) in LIMITS.get(kind, {}).items():
        v = params.get(name)
        if v is None:
            continue
        if not isinstance(v, int | float) or isinstance(v, bool) or v != v or not lo <= v <= hi:
            raise ValueError(f"{kind}: parameter {name} must be a number from {lo:g} to {hi:g} (got {v!r})")


# ------------------------------------------------------------------------------------------------- heartbeat
def _hold(store: Store, workspace: str, job_id: str) -> None:
    """Renew this job's lease from this process until :func:`_release`."""
    global _BEAT
    with _HELD_LOCK:
        _HELD[(id(store), workspace, job_id)] = store
        if _BEAT is None or not _BEAT.is_alive():
            _BEAT = threading.Thread(target=_beat, daemon=True, name="job-heartbeat")
            _BEAT.start()


def _release(store: Store, workspace: str, job_id: str) -> None:
    with _HELD_LOCK:
        _HELD.pop((id(store), workspace, job_id), None)


def _beat() -> None:
    while True:
        time.sleep(max(0.05, lease_seconds() / 4))
        with _HELD_LOCK:
            held = list(_HELD.items())
        for (_sid, ws, job_id), store in held:
            try:
                store.update_json(_key(ws, job_id), _renew)
            except Exception as e:  # noqa: BLE001 - a missed beat is retried; the lease has slack
                log.warning("heartbeat of job %s failed: %s", job_id, e)


def _renew(doc: dict[str, Any] | None) -> Any:
    if doc is None or doc.get("status") not in ("queued", "running") or doc.get("holder") != PROCESS:
        return UNCHANGED
    return {**doc, "lease_until": time.time() + lease_seconds()}


# ---------------------------------------------------------------------------------------------------- reading
def get_job(store: Store, workspace: str, job_id: str, now: float | None = None) -> dict[str, Any]:
    """The job document; a job whose lease expired (its worker died) is retried or failed first."""
    try:
        doc = store.read_json(_key(workspace, job_id))
    except (KeyNotFound, ValueError) as e:
        raise JobNotFound(f"no job {job_id!r}") from e
    now = time.time() if now is None else now
    if doc.get("status") in ("queued", "running") and _lease_until(doc) < now:
        doc = _reap(store, workspace, job_id, now)
    return doc


def _lease_until(doc: dict[str, Any]) -> float:
    """A job's lease end; documents written before leases count from their last update (none: no expiry)."""
    if doc.get("lease_until") is not None:
        return float(doc["lease_until"])
    try:
        return datetime.fromisoformat(doc["updated_at"]).timestamp() + lease_seconds()
    except (KeyError, TypeError, ValueError):
        return float("inf")


def _reap(store: Store, workspace: str, job_id: str, now: float) -> dict[str, Any]:
    retried = False

    def fn(doc: dict[str, Any] | None) -> Any:
        nonlocal retried
        if doc is None or doc.get("status") not in ("queued", "running") or _lease_until(doc) >= now:
            return UNCHANGED  # finished or renewed meanwhile
        attempts = int(doc.get("attempts", 0))
        since = datetime.fromtimestamp(_lease_until(doc), UTC).isoformat(timespec="seconds")
        if attempts >= MAX_ATTEMPTS:
            return {**doc, "status": "failed", "message": "failed", "updated_at": _now(),
                    "error": f"the worker stopped (no heartbeat since {since}) after {attempts} attempts"}
        retried = True
        return {**doc, "status": "queued", "holder": PROCESS, "lease_until": now + lease_seconds(),
                "message": f"retrying: the worker stopped (no heartbeat since {since})", "updated_at": _now()}

    doc = store.update_json(_key(workspace, job_id), fn)
    if retried:
        log.warning("job %s: worker lost, dispatched again", job_id)
        _dispatch(store, workspace, doc)
    return doc


# ---------------------------------------------------------------------------------------------------- writing
def _update(store: Store, workspace: str, job_id: str, **fields: Any) -> dict[str, Any]:
    def fn(doc: dict[str, Any] | None) -> Any:
        if doc is None:
            raise JobNotFound(f"no job {job_id!r}")
        return {**doc, **fields, "updated_at": _now()}

    return store.update_json(_key(workspace, job_id), fn)


def submit(store: Store, workspace: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Record a queued job and dispatch it; return the job document (with its ``id``). When the kind's
    in-flight slot (:data:`SINGLETONS`) is taken by a live job, that job is returned instead."""
    resolve_kind(kind)  # fail fast on an unknown kind
    check_params(kind, params)
    job_id = uuid.uuid4().hex[:16]
    doc = {"id": job_id, "kind": kind, "params": params, "status": "queued", "progress": 0.0, "message": "queued",
           "created_at": _now(), "updated_at": _now(), "result": None, "error": None, "attempts": 0,
           "holder": PROCESS, "lease_until": time.time() + _queued_lease()}
    store.write_json(_key(workspace, job_id), doc)
    if kind in SINGLETONS:
        slot_of, live = SINGLETONS[kind]
        slot = ws_key(workspace, "jobs", "inflight", f"{slot_of(params)}.json")
        taken: dict[str, Any] = {}

        def claim(cur: dict[str, Any] | None) -> Any:
            if cur and cur.get("job_id") != job_id:
                try:
                    other = get_job(store, workspace, cur["job_id"])
                except JobNotFound:
                    other = None
                if other is not None and other["status"] in live:
                    taken["job"] = other
                    return UNCHANGED
            return {"job_id": job_id}

        store.update_json(slot, claim)
        if taken:
            store.delete(_key(workspace, job_id))
            return taken["job"]
    _dispatch(store, workspace, doc)
    return doc


def _queued_lease() -> float:
    # a queued SQS message is durable and may wait behind other jobs; the local pool renews its own leases
    return 6 * 3600.0 if os.environ.get("GROWTHLENS_JOBS_QUEUE_URL") else lease_seconds()


def _dispatch(store: Store, workspace: str, doc: dict[str, Any]) -> None:
    queue_url = os.environ.get("GROWTHLENS_JOBS_QUEUE_URL")
    if queue_url:
        import boto3

        extra = {}
        if queue_url.endswith(".fifo"):  # one group per workspace and kind: its jobs run one at a time
            extra = {"MessageGroupId": f"{workspace}/{doc['kind']}",
                     "MessageDeduplicationId": f"{doc['id']}-{doc.get('attempts', 0)}"}
        boto3.client("sqs").send_message(
            QueueUrl=queue_url, MessageBody=json.dumps({"workspace": workspace, "job_id": doc["id"]}), **extra)
        return
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("GROWTHLENS_JOB_WORKERS", "1")))
    _hold(store, workspace, doc["id"])  # this process renews the queued job's lease until it has run
    _POOL.submit(run_job, store, workspace, doc["id"])


def run_job(store: Store, workspace: str, job_id: str) -> dict[str, Any]:
    """Claim a recorded job, run it to completion with a heartbeat, record progress, result or error. A job
    that is finished, or running under another live worker, is left alone. Returns the final document."""
    claimed = False

    def claim(doc: dict[str, Any] | None) -> Any:
        nonlocal claimed
        if doc is None:
            raise JobNotFound(f"no job {job_id!r}")
        if doc["status"] in ("done", "failed"):
            return UNCHANGED
        if doc["status"] == "running" and _lease_until(doc) >= time.time() \
                and doc.get("holder") != PROCESS:
            return UNCHANGED
        claimed = True
        return {**doc, "status": "running", "message": "started", "started_at": _now(), "updated_at": _now(),
                "holder": PROCESS, "lease_until": time.time() + lease_seconds(),
                "attempts": int(doc.get("attempts", 0)) + 1}

    try:
        doc = store.update_json(_key(workspace, job_id), claim)
        if not claimed:
            return doc
        _hold(store, workspace, job_id)

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
    finally:
        _release(store, workspace, job_id)


def wait_local(timeout: float = 600) -> None:
    """Wait for the local pool's queued jobs (CLI and tests)."""
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=True)
        _POOL = None
