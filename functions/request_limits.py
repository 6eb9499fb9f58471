"""Request limits applied before any route runs: body size per route and JSON nesting depth / finite numbers.

An ASGI middleware (pure ASGI, so it also runs under Mangum): a body larger than its route's limit is refused with
413 as soon as the limit is passed (a 100 MB webhook is not read in full before it is refused), and a JSON body
(``application/json``, NDJSON, or no content type) is checked by :func:`core.cdp.limits.check_json` so that deep
nesting gives 400 instead of a ``RecursionError``. Multipart uploads are only counted, not buffered.

Limits (bytes): webhooks ``GROWTHLENS_MAX_WEBHOOK_BYTES`` (1 MB); batches and imports
``GROWTHLENS_MAX_UPLOAD_BYTES`` (200 MB locally; the template sets 10 MB, API Gateway's payload limit), whose 413
tells the client to go through ``POST /api/data/uploads`` (:mod:`functions.uploads`); the local upload route
``PUT /api/data/uploads/{id}`` ``GROWTHLENS_MAX_STORED_UPLOAD_BYTES`` (1 GiB, streamed to disk, never buffered);
any other route ``GROWTHLENS_MAX_BODY_BYTES`` (1 MB). ``/api/attribution`` checks its own upload size.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from core.cdp.limits import check_json
from functions.uploads import max_stored_upload_bytes, max_upload_bytes, too_large_hint

__all__ = ["RequestLimits", "limit_for"]

_WEBHOOK = re.compile(r"^/api/sync/[^/]+/webhook/?$")
_UPLOAD = re.compile(r"^/api/(sync/[^/]+/batch|data/import)/?$")
_OWN_LIMIT = re.compile(r"^/api/attribution/?$")
_STORED_UPLOAD = re.compile(r"^/api/data/uploads/[^/]+/?$")


def limit_for(path: str) -> int | None:
    """The body-size limit of a route path (None: the route enforces its own)."""
    if _WEBHOOK.match(path):
        return int(os.environ.get("GROWTHLENS_MAX_WEBHOOK_BYTES", str(1 << 20)))
    if _UPLOAD.match(path):
        return max_upload_bytes()
    if _STORED_UPLOAD.match(path):
        return max_stored_upload_bytes()
    if _OWN_LIMIT.match(path):
        return None
    return int(os.environ.get("GROWTHLENS_MAX_BODY_BYTES", str(1 << 20)))


class _TooLarge(Exception):
    pass


async def _send_json(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware enforcing :func:`limit_for` and the JSON checks."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = limit_for(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ctype = headers.get("content-type", "").lower()
        mb = f"{(limit or 0) / 2**20:g} MB"
        too_large = f"request body larger than {mb}, the limit of this route"
        if _UPLOAD.match(path):
            too_large += f": {too_large_hint(path)}"
        if limit is not None and headers.get("content-length", "").isdigit() and int(headers["content-length"]) > limit:
            await _send_json(send, 413, too_large)
            return
        if "multipart/" in ctype or limit is None or _STORED_UPLOAD.match(path):
            await self._counted(scope, receive, send, limit, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        if body and ("json" in ctype or not ctype):
            try:
                check_json(body, "the request body")
            except ValueError as e:
                await _send_json(send, 400, str(e))
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _counted(self, scope: dict[str, Any], receive: Any, send: Any, limit: int | None,
                       too_large: str) -> None:
        size = 0
        started = False

        async def counting() -> dict[str, Any]:
            nonlocal size
            msg = await receive()
            size += len(msg.get("body", b""))
            if limit is not None and size > limit:
                raise _TooLarge
            return msg

        async def tracking(msg: dict[str, Any]) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counting, tracking)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, too_large)
