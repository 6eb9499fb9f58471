"""AWS Lambda entry points.

Each route group of :mod:`functions.app` is one Lambda function (``functions.handlers.<group>``, see
template.yaml), built lazily on first access so that a cold start only imports its own group. Every group app also
answers ``/api/health``. ``job_worker`` consumes the jobs queue (SQS) and runs each job with
:func:`functions.jobs.run_job`.
"""

from __future__ import annotations

import json
from typing import Any

from mangum import Mangum

from functions.app import ROUTE_GROUPS, create_app

_HANDLERS: dict[str, Mangum] = {}


def handler_for(group: str) -> Mangum:
    """The Mangum handler serving one route group (plus health)."""
    if group not in ROUTE_GROUPS:
        raise AttributeError(f"no route group {group!r}; known: {', '.join(ROUTE_GROUPS)}")
    if group not in _HANDLERS:
        groups = [group] if group == "health" else ["health", group]
        _HANDLERS[group] = Mangum(create_app(groups), lifespan="off")
    return _HANDLERS[group]


def job_worker(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS consumer: run each job message; report failed messages so SQS retries only those."""
    from functions.deps import get_store
    from functions.jobs import run_job

    failures = []
    for record in event.get("Records", []):
        try:
            msg = json.loads(record["body"])
            run_job(get_store(), msg["workspace"], msg["job_id"])  # a recorded failure is final
        except Exception:  # noqa: BLE001 - let SQS redeliver, then dead-letter
            failures.append({"itemIdentifier": record.get("messageId", "")})
    return {"batchItemFailures": failures}


def __getattr__(name: str) -> Mangum:
    """``functions.handlers.metrics`` etc.: the handler of that route group."""
    if name.startswith("__"):
        raise AttributeError(name)
    return handler_for(name)
