"""API keys of the caller's workspace (admin scope): create one (its secret shown once), list them masked, revoke.

- ``POST /api/keys`` ``{"name": "...", "scope": "read" | "write" | "admin"}``: a new key; the response holds the
  secret, which is never stored (only its hash) and never shown again.
- ``GET /api/keys``: the workspace's keys, masked, with their scope, creation, last use and revocation.
- ``DELETE /api/keys/{key_id}``: revoke a key; requests with it are refused from then on.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from functions.auth import Principal, create_key, list_keys, require_admin, revoke_key
from functions.deps import get_store
from functions.storage import Store

router = APIRouter(tags=["keys"])


class NewKey(BaseModel):
    """What a new key is for and what it may do."""

    name: str = Field(min_length=1, max_length=100)
    scope: Literal["read", "write", "admin"] = "read"


@router.post("/api/keys", status_code=201)
def create(spec: NewKey, store: Store = Depends(get_store),
           admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    """Create a key of the caller's workspace; ``secret`` is in this response only."""
    record, secret = create_key(store, admin.workspace, spec.name, spec.scope)
    return {**record.to_json(), "secret": secret}


@router.get("/api/keys")
def keys(store: Store = Depends(get_store), admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    """The caller's workspace's keys, masked."""
    return {"keys": [k.to_json() for k in list_keys(store, admin.workspace)]}


@router.delete("/api/keys/{key_id}")
def revoke(key_id: str = Path(pattern=r"^[0-9a-f]{12}$"), store: Store = Depends(get_store),
           admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    """Revoke one of the caller's workspace's keys (404 when it has none with that id)."""
    try:
        return revoke_key(store, admin.workspace, key_id).to_json()
    except KeyError as e:
        raise HTTPException(status_code=404, detail=str(e.args[0])) from e
