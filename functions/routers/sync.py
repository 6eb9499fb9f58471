"""Data ingestion from the customer tools: signed webhooks, batch exports and the sync log.

- ``POST /api/sync/{source}/webhook``: one webhook delivery. The signature is checked with the source's secret
  from ``GROWTHLENS_WEBHOOK_SECRET_<SOURCE>`` (e.g. ``GROWTHLENS_WEBHOOK_SECRET_SHOPIFY``); a missing or wrong
  signature is refused with 401. Demo secrets (``growthlens-demo-<source>``) are used only when
  ``GROWTHLENS_DEMO_SECRETS=1`` and no secret is set.
- ``POST /api/sync/{source}/batch``: an export (JSON array, wrapped JSON, NDJSON or CSV) through the same parsing
  and storage path; ``?topic=orders`` etc. tells the adapter what the records are when the shape does not. It is
  authenticated like the webhooks (the source's signature over the body; it lands in this deployment's
  workspace) or with an API key of write scope (``Authorization: Bearer`` or ``X-Growthlens-Api-Key``, into the
  key's workspace, :mod:`functions.auth`); anything else is refused with 401. An export larger than a request may
  carry is uploaded first (``POST /api/data/uploads``) and loaded with ``?upload_id=...`` (API key only: there is
  no body to sign).

Both are plain ``def`` routes: FastAPI runs them in its thread pool, so parsing, storing and the refresh never
block the event loop (a health check answers meanwhile). Body size and JSON depth are limited by the app's
middleware (:mod:`functions.app`) before a route sees the body.
- ``GET /api/sync/status`` (credentials needed, like every route but these two and health): per source, records
  received, events accepted, duplicates, rejections with reasons, last sync time; plus the size of the unified
  customer base.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from core.cdp.limits import check_json
from core.cdp.sources import SOURCES, adapter, header
from functions import cdp_store, uploads
from functions.auth import Principal, authorize, get_principal
from functions.deps import deployment_workspace, get_store, get_workspace
from functions.storage import Store

router = APIRouter(tags=["sync"])

DEMO_SECRET_PREFIX = "growthlens-demo-"
TOPIC_HEADERS = ("X-Shopify-Topic", "X-Recharge-Topic", "X-Gorgias-Topic", "X-Klaviyo-Topic", "X-Topic")


def webhook_secret(source: str) -> str | None:
    """The configured webhook secret of ``source`` (demo secret only with ``GROWTHLENS_DEMO_SECRETS=1``)."""
    secret = os.environ.get(f"GROWTHLENS_WEBHOOK_SECRET_{source.upper()}")
    if secret:
        return secret
    if os.environ.get("GROWTHLENS_DEMO_SECRETS") == "1":
        return f"{DEMO_SECRET_PREFIX}{source}"
    return None


async def raw_body(request: Request) -> bytes:
    """The request body (already bounded by the body-size middleware), read on the event loop so that the route
    itself can be a plain ``def`` run in the thread pool."""
    return await request.body()


def _credentials(request: Request) -> dict[str, str]:
    # GA4-style requests authenticate with an api_secret query parameter: offer query parameters too
    return {**dict(request.query_params), **dict(request.headers)}


def _signed(mod: ModuleType, name: str, body: bytes, creds: Mapping[str, str]) -> bool:
    secret = webhook_secret(name)
    return bool(secret) and mod.verify_signature(body, creds, secret)


def _key_principal(request: Request, store: Store) -> Principal | None:
    """The caller of a request carrying an API key with write scope (a key without it: 403), else ``None``."""
    if not (request.headers.get("x-growthlens-api-key") or request.headers.get("authorization")):
        return None
    return authorize(request, get_principal(request))


def _source(source: str) -> str:
    try:
        return adapter(source).SOURCE
    except ValueError as e:
        raise HTTPException(status_code=404, detail=str(e)) from e


@router.post("/api/sync/{source}/webhook")
def webhook(source: str, request: Request, topic: str | None = Query(default=None, max_length=100),
            body: bytes = Depends(raw_body), store: Store = Depends(get_store),
            workspace: str = Depends(deployment_workspace)) -> dict[str, Any]:
    """Receive one signed webhook delivery from ``source`` and update the affected customer profiles."""
    name = _source(source)
    mod = adapter(name)
    if not webhook_secret(name):
        raise HTTPException(status_code=401, detail=f"no webhook secret configured for {name}: set "
                            f"GROWTHLENS_WEBHOOK_SECRET_{name.upper()}")
    if not _signed(mod, name, body, _credentials(request)):
        raise HTTPException(status_code=401, detail=f"invalid or missing {name} webhook signature "
                            f"(expected: {mod.SIGNATURE_SCHEME})")
    _check_fresh(mod, name, request)
    hdr_topic = next((header(request.headers, h) for h in TOPIC_HEADERS if header(request.headers, h)), None)
    return cdp_store.ingest_batch(store, workspace, name, body, request.headers.get("content-type"),
                                  topic=topic or hdr_topic, mode="webhook")


def _check_fresh(mod: ModuleType, name: str, request: Request) -> None:
    """Refuse a webhook whose signed timestamp (sources that sign one, e.g. Klaviyo) is further than
    ``GROWTHLENS_WEBHOOK_TOLERANCE_SECONDS`` (300) from now: a captured delivery cannot be replayed later."""
    ts_header = getattr(mod, "TIMESTAMP_HEADER", None)
    if ts_header is None:
        return
    tolerance = float(os.environ.get("GROWTHLENS_WEBHOOK_TOLERANCE_SECONDS", "300"))
    raw = header(request.headers, ts_header)
    try:
        age = time.time() - float(raw)
    except (TypeError, ValueError):
        raise HTTPException(status_code=401, detail=f"{name} webhook without a valid {ts_header} "
                            "(Unix seconds)") from None
    if abs(age) > tolerance:
        raise HTTPException(status_code=401, detail=f"stale {name} webhook: {ts_header} is {abs(age):.0f} s "
                            f"{'old' if age > 0 else 'in the future'}, more than the {tolerance:.0f} s allowed")


@router.post("/api/sync/{source}/batch")
def batch(source: str, request: Request, topic: str | None = Query(default=None, max_length=100),
          rebuild: bool = Query(default=True),
          upload_id: str | None = Query(default=None, pattern=uploads.UPLOAD_ID_PATTERN),
          body: bytes = Depends(raw_body), store: Store = Depends(get_store)) -> dict[str, Any]:
    """Load a batch export of ``source`` (historical data); bad records are rejected with reasons. Signed like
    the source's webhooks (into this deployment's workspace), or with an API key of write scope (into the key's
    workspace); ``upload_id``: the export is a file uploaded with ``POST /api/data/uploads`` (API key only),
    checked like a request body."""
    name = _source(source)
    mod = adapter(name)
    ctype = request.headers.get("content-type")
    caller = _key_principal(request, store)
    workspace = caller.workspace if caller is not None else deployment_workspace()
    if upload_id is not None:
        if caller is None:
            raise HTTPException(status_code=401, detail="a batch from an upload needs an API key of write "
                                "scope (Authorization: Bearer, or X-Growthlens-Api-Key)")
        try:
            _, body, ctype = uploads.read_upload(store, workspace, upload_id)
        except uploads.UploadError as e:
            raise HTTPException(status_code=e.status, detail=str(e)) from e
        if "json" in (ctype or "").lower() or body.lstrip()[:1] in (b"[", b"{"):  # JSON or NDJSON, not CSV
            try:
                check_json(body, f"upload {upload_id}")
            except ValueError as e:
                raise HTTPException(status_code=400, detail=str(e)) from e
    elif caller is None and not _signed(mod, name, body, _credentials(request)):
        raise HTTPException(status_code=401, detail=f"unauthenticated batch: sign it like {name} webhooks "
                            f"({mod.SIGNATURE_SCHEME}) or send an API key of write scope (Authorization: Bearer, or "
                            "X-Growthlens-Api-Key)")
    out = cdp_store.ingest_batch(store, workspace, name, body, ctype, topic=topic, mode="batch", rebuild=rebuild)
    if upload_id is not None:
        uploads.discard_upload(store, workspace, upload_id)
    return out


@router.get("/api/sync/status", dependencies=[Depends(authorize)])
def status(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """The sync log of every source."""
    out = cdp_store.sync_status(store, workspace)
    for s in out["sources"]:
        s["webhook_secret_configured"] = webhook_secret(s["source"]) is not None
        s["signature_scheme"] = adapter(s["source"]).SIGNATURE_SCHEME
    out["known_sources"] = list(SOURCES)
    return out
