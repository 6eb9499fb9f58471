"""The audit log: who read or changed what, when and from where, appended once per request, never rewritten.

:func:`audit` runs on every credentialed route (mounted by :func:`functions.app.include_groups` after
:func:`functions.auth.authorize`) and records the requests that read customer data (profiles, search, insights,
segment members and changes) or change segments, keys, data or models (:func:`audited`), with:

* ``actor``: the verified credential (key id or token subject, how it signed in, its scope);
* ``action``: method and route template (``GET /api/customers/{person_id}``), ``target``: the path parameters;
* ``query``: the query parameters, except that free text that may be personal data (``q``, ``email``, ``phone``,
  ``name``) is kept only as a SHA-256 prefix of its normalised value: an investigator can check whether someone
  searched for a given address without the log holding it;
* ``from``: the client address (API Gateway's ``sourceIp`` when deployed) and user agent.

Each entry is its own object, ``workspaces/{ws}/audit/{day}/{time}-{random}.json``: parallel requests and Lambda
invocations never overwrite one another, and nothing in the API deletes or edits an entry (deployed, the bucket's
object versioning keeps even an overwrite). ``GET /api/audit`` (admin) reads them back, newest first.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import Depends, Request

from functions.auth import Principal, authorize
from functions.storage import KeyNotFound, Store, ws_key

__all__ = ["audit", "audited", "read_audit", "PERSONAL_PARAMS"]

PERSONAL_PARAMS = frozenset({"q", "email", "phone", "name", "query"})
_READS = ("/api/customers", "/api/audit", "/api/keys")  # reads of customer data, the log itself, credentials
_MEMBER_ROUTES = ("/members", "/changes")
# what stores, deletes or exports (sync: signed by the source)
_CHANGES = ("/api/segments", "/api/keys", "/api/data", "/api/models", "/api/privacy")


def audited(method: str, route: str) -> bool:
    """Whether a request to ``route`` (its template) with ``method`` is recorded: reads of customer data (profiles,
    search, insights, segment members and changes), of the audit log and keys, data-subject exports, and every
    change to segments, keys, data and models (a segment preview too: it returns counts of customers). What-if
    computations (optimize, simulate, forecast, attribution) read no personal data and store nothing of the
    caller's."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return route.startswith(_READS) or (route.startswith("/api/segments/") and route.endswith(_MEMBER_ROUTES))
    return route.startswith(_CHANGES)


def _hashed(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


def _source(request: Request) -> dict[str, Any]:
    event = request.scope.get("aws.event")
    ip = None
    if isinstance(event, dict):
        ip = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
    if ip is None and request.client is not None:
        ip = request.client.host
    return {"ip": ip, "user_agent": (request.headers.get("user-agent") or "")[:200]}


def audit(request: Request, principal: Principal = Depends(authorize)) -> None:
    """Append the request's entry when :func:`audited` says so (see the module docstring)."""
    from functions.deps import get_store

    route = getattr(request.scope.get("route"), "path", request.url.path)
    if not audited(request.method, route):
        return
    now = datetime.now(UTC)
    query = {k: (_hashed(v) if k in PERSONAL_PARAMS else v[:200]) for k, v in request.query_params.items()}
    entry = {
        "at": now.isoformat(timespec="microseconds"),
        "actor": {"subject": principal.subject, "via": principal.via, "scope": principal.scope},
        "action": f"{request.method} {route}",
        "target": {k: str(v)[:200] for k, v in request.path_params.items()},
        "query": query,
        "from": _source(request),
    }
    name = f"{now:%H%M%S.%f}-{secrets.token_hex(4)}.json"
    get_store().write_json(ws_key(principal.workspace, "audit", now.date().isoformat(), name), entry)


def read_audit(store: Store, workspace: str, since: date, until: date, action: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
    """The workspace's entries from ``since`` to ``until`` (days, inclusive), newest first, at most ``limit``;
    ``action``: only entries whose action contains it (e.g. ``/api/customers/{person_id}``)."""
    if until < since:
        raise ValueError(f"until ({until}) is before since ({since})")
    if (until - since).days > 366:
        raise ValueError("the audit log is read at most 366 days at a time")
    out: list[dict[str, Any]] = []
    day = until
    while day >= since and len(out) < limit:
        keys = sorted(store.list(ws_key(workspace, "audit", day.isoformat()) + "/"), reverse=True)
        for key in keys:
            try:
                entry = store.read_json(key)
            except KeyNotFound:
                continue
            if action is None or action in entry.get("action", ""):
                out.append(entry)
                if len(out) >= limit:
                    break
        day -= timedelta(days=1)
    return out
