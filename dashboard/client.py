"""HTTP client for the Growthlens API: the dashboard's only source of data.

The base URL comes from ``GROWTHLENS_API_URL`` (default ``http://127.0.0.1:8000``), so the same dashboard runs against
a local ``growthlens serve`` or a deployed API Gateway.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"

__all__ = ["ApiClient", "ApiError", "DEFAULT_API_URL"]


class ApiError(Exception):
    """The API answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The API's explanation as one readable sentence."""
        d = self.detail
        if isinstance(d, dict):
            msg = str(d.get("message") or d)
            problems = d.get("problems") or []
            if problems:
                msg += " — " + "; ".join(_problem_text(p) for p in problems[:5])
            return msg
        if isinstance(d, list):  # FastAPI validation errors
            return "; ".join(_validation_text(e) for e in d) or "invalid request"
        return str(d)


def _problem_text(p: Any) -> str:
    if not isinstance(p, dict):
        return str(p)
    where = ", ".join(f"{k} {p[k]}" for k in ("file", "row", "column") if p.get(k) is not None)
    return f"{where}: {p.get('problem', '')}" if where else str(p.get("problem", p))


def _validation_text(e: Any) -> str:
    if not isinstance(e, dict):
        return str(e)
    loc = ".".join(str(x) for x in e.get("loc", []) if x not in ("query", "body"))
    return f"{loc}: {e.get('msg', '')}" if loc else str(e.get("msg", e))


class ApiClient:
    """A small synchronous client (httpx) with JSON in and out and one error type."""

    def __init__(self, base_url: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None, api_key: str | None = None) -> None:
        """``api_key``: the credential every request sends (default ``GROWTHLENS_API_KEY``, which
        ``growthlens serve`` sets for the API and the dashboard alike)."""
        self.base_url = (base_url or os.environ.get("GROWTHLENS_API_URL") or DEFAULT_API_URL).rstrip("/")
        key = api_key or os.environ.get("GROWTHLENS_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport, headers=headers)

    def _send(self, method: str, path: str, raw: bool = False, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ApiError(0, f"the API at {self.base_url} is not reachable ({type(e).__name__}: {e})") from e
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except (ValueError, AttributeError):
                detail = r.text or r.reason_phrase
            raise ApiError(r.status_code, detail)
        if raw:
            return r.content
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return r.text

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query parameters (``None`` values dropped); the parsed JSON."""
        return self._send("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, json: Any = None, *, files: Any = None, data: Any = None) -> Any:
        """POST JSON (or multipart ``files``/``data`` for uploads); the parsed JSON."""
        if files is not None or data is not None:
            return self._send("POST", path, files=files, data=data)
        return self._send("POST", path, json=json)

    def put(self, path: str, json: Any = None) -> Any:
        """PUT JSON; the parsed JSON."""
        return self._send("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        """DELETE ``path``; the parsed JSON (``None`` for an empty answer)."""
        return self._send("DELETE", path)

    def get_bytes(self, path: str, **params: Any) -> bytes:
        """GET a file (e.g. a CSV export) as raw bytes, with the same errors as :meth:`get`."""
        return self._send("GET", path, params={k: v for k, v in params.items() if v is not None}, raw=True)

    def get_optional(self, path: str, **params: Any) -> Any | None:
        """GET that returns ``None`` when the resource does not exist yet (404) or the route is absent."""
        try:
            return self.get(path, **params)
        except ApiError as e:
            if e.status in (404, 405, 409):
                return None
            raise

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
