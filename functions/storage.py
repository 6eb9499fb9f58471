"""Key/value storage for Growthlens: a local directory (the default) or an S3 bucket.

Both stores share one small interface: bytes, JSON and Parquet tables by key, listing, deletion and atomic replace.
Keys are plain ``/``-separated strings; callers scope them by workspace with :func:`ws_key`, e.g.
``workspaces/default/datasets/marketing.parquet``.

Atomicity: a reader never sees half a file. Locally every write goes to a temporary file in the same folder and is
moved into place with ``os.replace``; S3 ``PutObject`` is atomic per object by design.

Concurrency: :meth:`Store.update_json` is a read-modify-write that never loses an update (an ``fcntl`` lock locally,
an ``If-Match``/``If-None-Match`` conditional put with retry on S3), and :meth:`Store.lock` is a named mutual
exclusion across processes (a held ``flock`` locally, released by the kernel when the holder dies; on S3 a lease
object created with ``If-None-Match: *``, renewed by a heartbeat and taken over once expired).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from core.serialize import json_default

__all__ = ["Store", "LocalStore", "S3Store", "AtomicFile", "KeyNotFound", "LockTimeout", "ws_key", "check_workspace",
           "store_from_env", "WORKSPACE_PATTERN"]

#: a workspace id: lower-case letters, digits and dashes, at most 63 characters (one path segment, one S3 key part)
WORKSPACE_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
_WORKSPACE_RE = re.compile(WORKSPACE_PATTERN)


class KeyNotFound(KeyError):
    """Raised when a key does not exist in the store."""


class LockTimeout(TimeoutError):
    """A named lock stayed held by another process for longer than the caller would wait."""


def check_workspace(workspace: str) -> str:
    """The workspace id itself, or ``ValueError`` naming the rule (a ``/`` would reach another workspace's keys,
    a long one exceeds file-name limits)."""
    if not isinstance(workspace, str) or not _WORKSPACE_RE.fullmatch(workspace):
        shown = workspace if isinstance(workspace, str) and len(workspace) <= 80 else f"{str(workspace)[:80]}…"
        raise ValueError(f"invalid workspace id {shown!r}: use 1-63 lower-case letters, digits and dashes, "
                         "starting with a letter or digit")
    return workspace


def ws_key(workspace: str, *parts: str) -> str:
    """Build a workspace-scoped key: ``workspaces/{workspace}/{parts...}``."""
    check_workspace(workspace)
    for p in parts:
        for seg in p.split("/"):
            _check_segment(seg, "key part")
    return "/".join(["workspaces", workspace, *parts])


def _check_segment(seg: str, what: str) -> None:
    if not seg or seg in {".", ".."} or "\\" in seg or "\x00" in seg:
        raise ValueError(f"invalid {what} {seg!r} in storage key")


class Store(ABC):
    """The storage interface every route, job and CLI command uses."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the object's bytes or raise :class:`KeyNotFound`."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Atomically create or replace the object."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether the key exists."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """All keys under ``prefix``, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the key if it exists (no error if absent)."""

    # --- conveniences built on the primitives ---------------------------------------------------------------
    def read_json(self, key: str) -> Any:
        """Read and parse a JSON document."""
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, obj: Any) -> None:
        """Serialise ``obj`` as JSON (dates, numpy scalars and arrays handled) and write it atomically."""
        self.write_bytes(key, json.dumps(obj, default=json_default, separators=(",", ":")).encode())

    def read_table(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read a Parquet table."""
        return pd.read_parquet(io.BytesIO(self.read_bytes(key)), columns=columns)

    def write_table(self, key: str, df: pd.DataFrame) -> None:
        """Write a DataFrame as Parquet, atomically."""
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        self.write_bytes(key, buf.getvalue())

    def write_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Write several objects. Each one is atomic; callers that need all-or-nothing publish a manifest last."""
        for key, data in items:
            self.write_bytes(key, data)

    def size(self, key: str) -> int:
        """The object's size in bytes (without reading it), or :class:`KeyNotFound`."""
        return len(self.read_bytes(key))

    def presigned_put(self, key: str, content_type: str | None = None, expires: int = 900) -> dict[str, Any] | None:
        """``{"url", "headers"}`` of a URL a client may ``PUT`` the object to directly, or None when the store
        cannot sign one (the local store: the API receives the upload itself)."""
        return None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; return how many were deleted."""
        keys = self.list(prefix)
        for k in keys:
            self.delete(k)
        return len(keys)

    # --- concurrency ------------------------------------------------------------------------------------------
    @abstractmethod
    def update_json(self, key: str, fn: Callable[[Any | None], Any]) -> Any:
        """Atomic read-modify-write of a JSON document: ``fn(current or None) -> new``; concurrent updates of the
        same key are serialised or retried, never lost. ``fn`` may return :data:`UNCHANGED` to write nothing.
        Returns what ``fn`` returned (the current document when unchanged)."""

    @abstractmethod
    @contextmanager
    def lock(self, name: str, timeout: float = 60.0, ttl: float = 60.0) -> Iterator[None]:
        """Hold the named lock (shared by every process using this store) for the ``with`` block; raise
        :class:`LockTimeout` after waiting ``timeout`` seconds. ``ttl``: how long a lease outlives a holder that
        died without releasing it (S3; a local lock dies with its process)."""


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: returned by an :meth:`Store.update_json` function to leave the document as it is
UNCHANGED: Any = _Unchanged()


class LocalStore(Store):
    """A directory on the local filesystem; keys map to relative paths."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        for seg in key.split("/"):
            _check_segment(seg, "key part")
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise ValueError(f"key {key!r} escapes the store root")
        return p

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise KeyNotFound(key) from e

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError) as e:
            raise KeyNotFound(key) from e

    def open_write(self, key: str) -> AtomicFile:
        """A file to stream a large object into: it replaces ``key`` on :meth:`AtomicFile.commit`, never before."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        return AtomicFile(os.fdopen(fd, "wb"), Path(tmp), path)

    def list(self, prefix: str = "") -> list[str]:
        # a prefix may end mid-name ("a/b" matches "a/bc"): walk from the folder of its last "/" and filter
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / folder if folder else self.root
        if not start.is_dir():
            return []
        out = []
        for p in start.rglob("*"):
            if p.is_file() and not p.name.startswith(".tmp-"):
                k = p.relative_to(self.root).as_posix()
                if k.startswith(prefix):
                    out.append(k)
        return sorted(out)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _lock_path(self, name: str) -> Path:
        for seg in name.split("/"):
            _check_segment(seg, "lock name part")
        path = self.root / ".locks" / (name.replace("/", "__") + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def _flock(self, name: str, timeout: float) -> Iterator[None]:
        fd = os.open(self._lock_path(name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(f"lock {name!r} still held after {timeout:.0f} s") from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def lock(self, name: str, timeout: float = 60.0, ttl: float = 60.0) -> Iterator[None]:
        with self._flock(name, timeout):
            yield

    def update_json(self, key: str, fn: Callable[[Any | None], Any]) -> Any:
        with self._flock("doc/" + key, timeout=60.0):
            try:
                cur = self.read_json(key)
            except KeyNotFound:
                cur = None
            new = fn(cur)
            if new is UNCHANGED:
                return cur
            self.write_json(key, new)
            return new


class AtomicFile:
    """A temporary file in the target's folder, moved into place by :meth:`commit` (readers never see a part)."""

    def __init__(self, f: Any, tmp: Path, target: Path) -> None:
        self.f, self.tmp, self.target, self.size = f, tmp, target, 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.size += len(data)

    def commit(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


def store_from_env() -> Store:
    """The store configured by the environment.

    ``GROWTHLENS_BUCKET`` set → :class:`S3Store` (optional ``GROWTHLENS_S3_PREFIX``); otherwise a
    :class:`LocalStore` rooted at ``GROWTHLENS_DATA_DIR`` (default ``./.growthlens``).
    """
    bucket = os.environ.get("GROWTHLENS_BUCKET")
    if bucket:
        return S3Store(bucket, os.environ.get("GROWTHLENS_S3_PREFIX", ""))
    return LocalStore(os.environ.get("GROWTHLENS_DATA_DIR", ".growthlens"))


from functions.storage_s3 import S3Store  # noqa: E402  (after Store: the S3 store builds on it)
