"""Security headers on every API response (a pure ASGI middleware, so it also runs under Mangum).

``X-Content-Type-Options: nosniff`` (a JSON body is never sniffed as HTML), ``X-Frame-Options: DENY`` and a
``frame-ancestors 'none'`` policy (no page may frame the API), ``Referrer-Policy: no-referrer``,
``Strict-Transport-Security`` (browsers keep to HTTPS once they have seen the deployed API) and
``Cache-Control: no-store`` on ``/api/`` responses, which may hold customer data and must not sit in a shared
cache. The interactive docs (``/docs``) keep their own content policy, as they load scripts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SecurityHeaders", "HEADERS"]

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
)
_API_ONLY = ((b"cache-control", b"no-store"),
             (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))


class SecurityHeaders:
    """Adds :data:`HEADERS` to every HTTP response, and no-store caching and a closed content policy to API ones."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = HEADERS + (_API_ONLY if scope.get("path", "").startswith("/api/") else ())

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k, v) for k, v in extra if k not in present)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
