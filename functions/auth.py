"""Who is calling: API keys per workspace, verified identity-provider claims, and the scopes a route needs.

Every route but health and the signed webhooks needs credentials (:func:`authorize`, mounted on each route group by
:func:`functions.app.include_groups`), and the workspace a route works in comes only from them
(:func:`functions.deps.get_workspace`), never from a header or parameter a caller can set.

Credentials, in the order they are tried:

* **Identity-provider claims** (deployed): behind API Gateway's JWT authorizer the verified claims arrive inside
  the Lambda event (``requestContext.authorizer.jwt.claims``), which no HTTP caller can write. The workspace is the
  ``custom:workspace`` claim; scopes are the ``growthlens/<scope>`` entries of ``scope`` or the ``cognito:groups``.
* **API keys** (machines, the local dashboard): ``Authorization: Bearer glk_…`` or ``X-Growthlens-Api-Key``.
  A key is ``glk_<id>_<secret>`` with 32 random bytes of secret; the store keeps only its SHA-256 (a key is high
  entropy, so a fast hash cannot be brute-forced) at ``auth/keys/<hash>.json`` with its workspace, scope, name,
  creation and last-used times (updated at most once a minute) and revocation. It is shown once, at creation.
* **The deployment key** ``GROWTHLENS_API_KEY`` (a secret of the environment): admin of ``GROWTHLENS_WORKSPACE``.
  ``growthlens serve`` sets a fresh one for its API and dashboard when none is given.

Scopes nest: ``read`` (GET), ``write`` (everything else), ``admin`` (keys); each includes the ones before it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, HTTPException, Request

from functions.storage import KeyNotFound, Store, check_workspace

__all__ = ["SCOPES", "Principal", "ApiKey", "create_key", "list_keys", "revoke_key", "principal_for_key",
           "get_principal", "authorize", "require_admin", "DEFAULT_WORKSPACE"]

SCOPES = ("read", "write", "admin")
DEFAULT_WORKSPACE = "default"
KEY_PREFIX = "glk_"
TOUCH_SECONDS = 60.0
_KEYS = "auth/keys"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """A verified caller: the workspace it may act in, its scope and who it is (key id or token subject)."""

    workspace: str
    scope: str
    subject: str
    via: str  # "key", "token" or "deployment key"

    def allows(self, needed: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


@dataclass(frozen=True)
class ApiKey:
    """A stored key without its secret (what listing shows)."""

    key_id: str
    workspace: str
    name: str
    scope: str
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None

    @property
    def masked(self) -> str:
        return f"{KEY_PREFIX}{self.key_id}_…"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "masked": self.masked}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


def create_key(store: Store, workspace: str, name: str, scope: str = "read") -> tuple[ApiKey, str]:
    """A new key of ``workspace``: its stored record and the secret, which is shown once and never stored."""
    check_workspace(workspace)
    _check_scope(scope)
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("a key needs a name of 1-100 characters (what it is for)")
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id=key_id, workspace=workspace, name=name, scope=scope, created_at=_now())
    store.write_json(f"{_KEYS}/{_digest(secret)}.json", asdict(record))
    return record, secret


def _records(store: Store) -> list[tuple[str, ApiKey]]:
    out = []
    for key in store.list(f"{_KEYS}/"):
        try:
            out.append((key, ApiKey(**store.read_json(key))))
        except (KeyNotFound, TypeError, ValueError):
            continue
    return out


def list_keys(store: Store, workspace: str) -> list[ApiKey]:
    """The workspace's keys, newest first (secrets are not stored, so none is shown)."""
    keys = [k for _, k in _records(store) if k.workspace == workspace]
    return sorted(keys, key=lambda k: k.created_at, reverse=True)


def revoke_key(store: Store, workspace: str, key_id: str) -> ApiKey:
    """Revoke one of the workspace's keys (``KeyError`` when it has none with that id)."""
    for path, rec in _records(store):
        if rec.workspace == workspace and rec.key_id == key_id:
            base = asdict(rec)
            done = store.update_json(path, lambda cur, base=base: {
                **(cur or base), "revoked_at": (cur or {}).get("revoked_at") or _now()})
            return ApiKey(**done)
    raise KeyError(f"workspace {workspace!r} has no API key {key_id!r}")


def principal_for_key(store: Store, key: str) -> Principal | None:
    """The caller a presented key stands for, or ``None`` (unknown, malformed or revoked)."""
    deployment = os.environ.get("GROWTHLENS_API_KEY")
    if deployment and hmac.compare_digest(key.encode(), deployment.encode()):
        ws = check_workspace(os.environ.get("GROWTHLENS_WORKSPACE", DEFAULT_WORKSPACE))
        return Principal(workspace=ws, scope="admin", subject="deployment", via="deployment key")
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    path = f"{_KEYS}/{_digest(key)}.json"
    try:
        rec = ApiKey(**store.read_json(path))
    except KeyNotFound:
        return None
    if rec.revoked_at:
        return None
    last = datetime.fromisoformat(rec.last_used_at) if rec.last_used_at else None
    if last is None or (datetime.now(UTC) - last).total_seconds() > TOUCH_SECONDS:
        try:  # best effort: a failed touch (a read-only function, a lock held) must not refuse a valid key
            store.update_json(path, lambda cur: {**(cur or asdict(rec)), "last_used_at": _now()})
        except Exception as e:  # noqa: BLE001 - any store error: the key stays valid, the time is a day late
            log.warning("could not record the last use of API key %s: %s", rec.key_id, type(e).__name__)
    return Principal(workspace=rec.workspace, scope=rec.scope, subject=rec.key_id, via="key")


def _claims(request: Request) -> dict[str, Any] | None:
    event = request.scope.get("aws.event")  # set by Mangum from the Lambda event: not writable by a caller
    if not isinstance(event, dict):
        return None
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


def _principal_for_claims(claims: dict[str, Any]) -> Principal:
    ws = claims.get("custom:workspace")
    if not ws:
        raise HTTPException(status_code=403, detail="the signed-in user belongs to no workspace "
                            "(custom:workspace claim missing)")
    granted = {s.split("/", 1)[1] for s in str(claims.get("scope", "")).split() if s.startswith("growthlens/")}
    groups = claims.get("cognito:groups") or []
    granted |= set(groups.strip("[]").replace(",", " ").split() if isinstance(groups, str) else groups)
    scope = next((s for s in reversed(SCOPES) if s in granted), "read")
    return Principal(workspace=check_workspace(str(ws)), scope=scope, subject=str(claims.get("sub", "")),
                     via="token")


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-growthlens-api-key")


def get_principal(request: Request) -> Principal:
    """The verified caller, or 401 saying how to authenticate."""
    from functions.deps import get_store  # the store dependency lives with the others

    claims = _claims(request)
    if claims is not None:
        return _principal_for_claims(claims)
    key = _presented_key(request)
    if key:
        found = principal_for_key(get_store(), key)
        if found is not None:
            return found
        raise HTTPException(status_code=401, detail="the API key is unknown or revoked",
                            headers={"WWW-Authenticate": "Bearer"})
    raise HTTPException(status_code=401, detail="sign in: send an API key as 'Authorization: Bearer <key>' (or "
                        "X-Growthlens-Api-Key), or a signed-in user's token", headers={"WWW-Authenticate": "Bearer"})


def authorize(request: Request, principal: Principal = Depends(get_principal)) -> Principal:
    """Credentials with the scope the method needs: ``read`` for GET and HEAD, ``write`` for the rest."""
    needed = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"
    if not principal.allows(needed):
        raise HTTPException(status_code=403, detail=f"this credential has scope {principal.scope!r}; "
                            f"{request.method} {request.url.path} needs {needed!r}")
    return principal


def require_admin(principal: Principal = Depends(get_principal)) -> Principal:
    """Credentials with the ``admin`` scope (managing keys)."""
    if not principal.allows("admin"):
        raise HTTPException(status_code=403, detail=f"managing API keys needs scope 'admin' (this credential: "
                            f"{principal.scope!r})")
    return principal
