"""Uploads for files larger than a request may carry: stored first, imported from the store afterwards.

Deployed, API Gateway accepts at most 10 MB per request, so ``POST /api/data/uploads`` hands out a presigned S3
``PUT`` URL and the client sends the file straight to the bucket; with the local store the upload goes to
``PUT /api/data/uploads/{upload_id}`` on the API itself. Either way the object lands at
``workspaces/{ws}/uploads/{upload_id}/data`` next to a manifest (``upload.json``: file name, content type, expiry),
and ``POST /api/data/import {"upload_id": ...}`` (or ``POST /api/sync/{source}/batch?upload_id=...``) reads it
back and runs it through the same importers as a direct request. An import that publishes deletes its uploads.

Limits: an upload is at most ``GROWTHLENS_MAX_STORED_UPLOAD_BYTES`` (default 1 GiB; a presigned PUT cannot bound
the size, so it is checked when the object is read), and its URL and manifest expire after
``GROWTHLENS_UPLOAD_TTL_SECONDS`` (default 900).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from typing import Any

from functions.storage import KeyNotFound, Store, ws_key

__all__ = ["UPLOAD_ID_PATTERN", "UploadError", "max_upload_bytes", "max_stored_upload_bytes", "create_upload",
           "upload_manifest", "data_key", "read_upload", "discard_upload", "too_large_hint"]

UPLOAD_ID_PATTERN = r"^[0-9a-f]{32}$"
_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")


class UploadError(ValueError):
    """An upload that cannot be created or read; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def max_upload_bytes() -> int:
    """Largest import or batch a request may carry (``GROWTHLENS_MAX_UPLOAD_BYTES``, default 200 MB; 10 MB behind
    API Gateway, where larger files go through an upload)."""
    return int(os.environ.get("GROWTHLENS_MAX_UPLOAD_BYTES", str(200 << 20)))


def max_stored_upload_bytes() -> int:
    """Largest object an upload may hold (``GROWTHLENS_MAX_STORED_UPLOAD_BYTES``, default 1 GiB)."""
    return int(os.environ.get("GROWTHLENS_MAX_STORED_UPLOAD_BYTES", str(1 << 30)))


def _ttl() -> int:
    return int(os.environ.get("GROWTHLENS_UPLOAD_TTL_SECONDS", "900"))


def too_large_hint(path: str) -> str:
    """What a client whose request was too large should do instead (for the 413 of an import or batch route)."""
    m = re.match(r"^/api/sync/([^/]+)/batch", path)
    then = (f"POST /api/sync/{m.group(1)}/batch?upload_id=..." if m
            else 'POST /api/data/import with {"upload_id": ...}')
    return f"upload larger files with POST /api/data/uploads (it returns the URL to PUT the file to), then {then}"


def _manifest_key(ws: str, upload_id: str) -> str:
    return ws_key(ws, "uploads", upload_id, "upload.json")


def data_key(ws: str, upload_id: str) -> str:
    """Where the uploaded file's bytes are stored."""
    return ws_key(ws, "uploads", upload_id, "data")


def _check_id(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not re.fullmatch(UPLOAD_ID_PATTERN, upload_id):
        raise UploadError(422, f"invalid upload id {str(upload_id)[:80]!r}: 32 hexadecimal characters expected")
    return upload_id


def create_upload(store: Store, ws: str, filename: str, content_type: str | None = None) -> dict[str, Any]:
    """Record a new upload and return ``{upload_id, filename, expires_at, max_bytes, method, url?, headers}``;
    ``url`` is the presigned S3 PUT when the store can sign one, else absent (the caller adds the local route)."""
    name = os.path.basename(str(filename or "").strip())
    if not _FILENAME_RE.fullmatch(name):
        raise UploadError(422, f"invalid file name {name[:80]!r}: letters, digits, '.', '_', '-' and spaces, "
                               "at most 200 characters")
    upload_id = secrets.token_hex(16)
    ttl = _ttl()
    manifest = {"upload_id": upload_id, "filename": name, "content_type": content_type or None,
                "created_at": time.time(), "expires_at": time.time() + ttl}
    store.write_json(_manifest_key(ws, upload_id), manifest)
    out: dict[str, Any] = {"upload_id": upload_id, "filename": name, "expires_at": manifest["expires_at"],
                           "max_bytes": max_stored_upload_bytes(), "method": "PUT", "headers": {}}
    signed = store.presigned_put(data_key(ws, upload_id), content_type=content_type, expires=ttl)
    if signed is not None:
        out.update(signed)
    return out


def upload_manifest(store: Store, ws: str, upload_id: str, *, for_writing: bool = False) -> dict[str, Any]:
    """The manifest of an upload; 404 when unknown, 410 when it expired before the file was written."""
    try:
        manifest = store.read_json(_manifest_key(ws, _check_id(upload_id)))
    except KeyNotFound as e:
        raise UploadError(404, f"no upload {upload_id}: create one with POST /api/data/uploads") from e
    if for_writing and manifest.get("expires_at", 0) < time.time():
        raise UploadError(410, f"upload {upload_id} expired: create a new one with POST /api/data/uploads")
    return manifest


def read_upload(store: Store, ws: str, upload_id: str) -> tuple[str, bytes, str | None]:
    """``(filename, bytes, content_type)`` of a finished upload: 404 when unknown or not yet written, 413 when the
    object is larger than :func:`max_stored_upload_bytes` (checked before it is read)."""
    manifest = upload_manifest(store, ws, upload_id)
    key = data_key(ws, upload_id)
    try:
        size = store.size(key)
    except KeyNotFound as e:
        raise UploadError(404, f"upload {upload_id} has no file yet: PUT it to the URL POST /api/data/uploads "
                               "returned") from e
    limit = max_stored_upload_bytes()
    if size > limit:
        raise UploadError(413, f"upload {upload_id} holds {size:,} bytes, more than the {limit:,} accepted")
    return manifest["filename"], store.read_bytes(key), manifest.get("content_type")


def discard_upload(store: Store, ws: str, upload_id: str) -> None:
    """Delete an upload's file and manifest (after a publishing import)."""
    store.delete_prefix(ws_key(ws, "uploads", _check_id(upload_id)) + "/")
