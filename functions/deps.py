"""FastAPI dependencies: every route gets its store and workspace from here, never from settings directly."""

from __future__ import annotations

import os
from functools import lru_cache

from fastapi import Depends, HTTPException

from functions.auth import DEFAULT_WORKSPACE, Principal, get_principal
from functions.datasets import Dataset, load_dataset
from functions.storage import Store, check_workspace, store_from_env


@lru_cache(maxsize=1)
def _store() -> Store:
    return store_from_env()


def get_store() -> Store:
    """The configured store (local directory or S3), one per process."""
    return _store()


def get_workspace(principal: Principal = Depends(get_principal)) -> str:
    """The caller's workspace: the one its verified credentials belong to (:mod:`functions.auth`), never a header
    or parameter the caller sets."""
    return principal.workspace


def deployment_workspace() -> str:
    """The workspace of this deployment (``GROWTHLENS_WORKSPACE``, default ``default``): where a source's signed
    webhooks land, the signature's secret being this deployment's."""
    try:
        return check_workspace(os.environ.get("GROWTHLENS_WORKSPACE", DEFAULT_WORKSPACE))
    except ValueError as e:
        raise HTTPException(status_code=500, detail=f"GROWTHLENS_WORKSPACE: {e}") from e


def get_dataset(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> Dataset:
    """The workspace's current dataset (404 via the app's error handler when there is none)."""
    return load_dataset(store, workspace)
