"""FastAPI dependencies: every route gets its store and workspace from here, never from settings directly."""

from __future__ import annotations

import os
from functools import lru_cache

from fastapi import Depends, Header, HTTPException

from functions.datasets import Dataset, load_dataset
from functions.storage import Store, check_workspace, store_from_env

DEFAULT_WORKSPACE = "default"


@lru_cache(maxsize=1)
def _store() -> Store:
    return store_from_env()


def get_store() -> Store:
    """The configured store (local directory or S3), one per process."""
    return _store()


def get_workspace(x_growthlens_workspace: str | None = Header(default=None)) -> str:
    """The caller's workspace.

    Locally every request works in ``GROWTHLENS_WORKSPACE`` (default ``default``). Deployed behind an authorizer,
    the workspace will come from the caller's verified credentials; a plain header is honoured only when
    ``GROWTHLENS_TRUST_WORKSPACE_HEADER=1`` (tests and local multi-tenant demos), never from a query parameter.
    """
    if x_growthlens_workspace and os.environ.get("GROWTHLENS_TRUST_WORKSPACE_HEADER") == "1":
        ws = x_growthlens_workspace
    else:
        ws = os.environ.get("GROWTHLENS_WORKSPACE", DEFAULT_WORKSPACE)
    try:
        return check_workspace(ws)  # a "/" would reach another workspace's keys; length is bounded
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e


def get_dataset(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> Dataset:
    """The workspace's current dataset (404 via the app's error handler when there is none)."""
    return load_dataset(store, workspace)
