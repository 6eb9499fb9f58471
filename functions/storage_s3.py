"""The S3 implementation of :class:`functions.storage.Store`: conditional puts, leases and presigned uploads.

``update_json`` is a read-modify-write guarded by ``If-Match`` (or ``If-None-Match: *`` for a new key) with
jittered retry; ``lock`` is a lease object created with ``If-None-Match: *``, renewed by a heartbeat thread and taken
over once expired, so a holder that died releases it within ``ttl``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from core.serialize import json_default
from functions.storage import UNCHANGED, KeyNotFound, LockTimeout, Store, _check_segment

__all__ = ["S3Store"]


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
        try:
            self.size(key)
            return True
        except KeyNotFound:
            return False

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            return int(self.s3.head_object(Bucket=self.bucket, Key=self._k(key))["ContentLength"])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise KeyNotFound(key) from e
            raise

    def presigned_put(self, key: str, content_type: str | None = None, expires: int = 900) -> dict[str, Any] | None:
        params = {"Bucket": self.bucket, "Key": self._k(key)}
        headers = {}
        if content_type:  # signed: the client must send the same Content-Type
            params["ContentType"] = headers["Content-Type"] = content_type
        url = self._presigner().generate_presigned_url("put_object", Params=params, ExpiresIn=int(expires),
                                                       HttpMethod="PUT")
        return {"url": url, "headers": headers}

    def _presigner(self) -> Any:
        """A client presigning with SigV4 on the store client's region and endpoint (unless told explicitly,
        botocore presigns S3 URLs with the deprecated SigV2)."""
        if getattr(self, "_v4", None) is None:
            import boto3
            from botocore.config import Config

            self._v4 = boto3.client("s3", region_name=self.s3.meta.region_name,
                                    endpoint_url=self.s3.meta.endpoint_url, config=Config(signature_version="s3v4"))
        return self._v4

    def list(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                out.append(obj["Key"][len(self.prefix) :])
        return sorted(out)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self._k(key))

    def _get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self._k(key))
        except self.s3.exceptions.NoSuchKey:
            return None, None
        return obj["Body"].read(), obj["ETag"]

    def _put_if(self, key: str, data: bytes, etag: str | None) -> bool:
        """Put only if the object is still at ``etag`` (``None``: only if it does not exist); False otherwise."""
        from botocore.exceptions import ClientError

        cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, ServerSideEncryption="AES256",
                               **cond)
            return True
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code"))
            if code in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey"}:
                return False
            raise

    def update_json(self, key: str, fn: Callable[[Any | None], Any]) -> Any:
        for attempt in range(50):
            raw, etag = self._get_tagged(key)
            cur = json.loads(raw) if raw is not None else None
            new = fn(cur)
            if new is UNCHANGED:
                return cur
            data = json.dumps(new, default=json_default, separators=(",", ":")).encode()
            if self._put_if(key, data, etag):
                return new
            time.sleep(min(0.5, 0.01 * 2 ** attempt) * (0.5 + secrets.randbelow(100) / 100))
        raise RuntimeError(f"{key}: too many concurrent updates")

    @contextmanager
    def lock(self, name: str, timeout: float = 60.0, ttl: float = 60.0) -> Iterator[None]:
        key = f"locks/{name}.json"
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + timeout

        def lease() -> bytes:
            return json.dumps({"owner": owner, "expires": time.time() + ttl}).encode()

        while True:
            raw, etag = self._get_tagged(key)
            if raw is None:
                ok = self._put_if(key, lease(), None)
            elif json.loads(raw).get("expires", 0) < time.time():  # the holder died: take the lease over
                ok = self._put_if(key, lease(), etag)
            else:
                ok = False
            if ok:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(f"lock {name!r} still held after {timeout:.0f} s")
            time.sleep(0.05 + secrets.randbelow(50) / 1000)
        stop = threading.Event()

        def renew() -> None:  # heartbeat: keep the lease while the holder lives
            while not stop.wait(ttl / 3):
                raw, etag = self._get_tagged(key)
                if raw is None or json.loads(raw).get("owner") != owner or not self._put_if(key, lease(), etag):
                    return

        beat = threading.Thread(target=renew, daemon=True, name=f"lease-{name}")
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            raw, etag = self._get_tagged(key)
            if raw is not None and json.loads(raw).get("owner") == owner:
                self.s3.delete_object(Bucket=self.bucket, Key=self._k(key))
