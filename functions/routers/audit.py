"""The audit log of the caller's workspace (admin scope): ``GET /api/audit?since=&until=&action=&limit=``.

Entries are written by :func:`functions.audit.audit` on every request that reads customer data or changes anything;
see that module for what an entry holds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query

from functions.audit import read_audit
from functions.auth import Principal, require_admin
from functions.deps import get_store
from functions.storage import Store

router = APIRouter(tags=["audit"])


@router.get("/api/audit")
def entries(since: date | None = Query(default=None, description="first day (UTC), default 30 days ago"),
            until: date | None = Query(default=None, description="last day (UTC), default today"),
            action: str | None = Query(default=None, max_length=200,
                                       description="only actions containing this, e.g. /api/customers/"),
            limit: int = Query(default=200, ge=1, le=2000), store: Store = Depends(get_store),
            admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    """Who read or changed what in the caller's workspace, newest first."""
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=30)
    items = read_audit(store, admin.workspace, since, until, action, limit)
    return {"since": since.isoformat(), "until": until.isoformat(), "count": len(items), "entries": items}
