"""Key/value storage for Growthlens: a local directory (the default) or an S3 bucket.

Both stores share one small interface: bytes, JSON and Parquet tables by key, listing, deletion and atomic replace.
Keys are plain ``/``-separated strings; callers scope them by workspace with :func:`ws_key`, e.g.
``workspaces/default/datasets/marketing.parquet``.

Atomicity: a reader never sees half a file. Locally every write goes to a temporary file in the same folder and is
moved into place with ``os.replace``; S3 ``PutObject`` is atomic per object by design.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from core.serialize import json_default

__all__ = ["Store", "LocalStore", "S3Store", "KeyNotFound", "ws_key", "store_from_env"]


class KeyNotFound(KeyError):
    """Raised when a key does not exist in the store."""


def ws_key(workspace: str, *parts: str) -> str:
    """Build a workspace-scoped key: ``workspaces/{workspace}/{parts...}``."""
    _check_segment(workspace, "workspace")
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

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; return how many were deleted."""
        keys = self.list(prefix)
        for k in keys:
            self.delete(k)
        return len(keys)


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


class S3Store(Store):
    """An S3 bucket (optionally under a key prefix)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        import boto3  # imported here so core tools using LocalStore never need AWS libraries loaded

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.s3 = client or boto3.client("s3")

    def _k(self, key: str) -> str:
        for seg in key.split("/"):
            _check_segment(seg, "key part")
        return self.prefix + key

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except self.s3.exceptions.NoSuchKey as e:
            raise KeyNotFound(key) from e

    def write_bytes(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, ServerSideEncryption="AES256")

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                out.append(obj["Key"][len(self.prefix) :])
        return sorted(out)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self._k(key))


def store_from_env() -> Store:
    """The store configured by the environment.

    ``GROWTHLENS_BUCKET`` set → :class:`S3Store` (optional ``GROWTHLENS_S3_PREFIX``); otherwise a
    :class:`LocalStore` rooted at ``GROWTHLENS_DATA_DIR`` (default ``./.growthlens``).
    """
    bucket = os.environ.get("GROWTHLENS_BUCKET")
    if bucket:
        return S3Store(bucket, os.environ.get("GROWTHLENS_S3_PREFIX", ""))
    return LocalStore(os.environ.get("GROWTHLENS_DATA_DIR", ".growthlens"))
