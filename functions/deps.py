"""FastAPI dependencies: every route gets its store and workspace from here, never from settings directly."""

from __future__ import annotations

import os
from functools import lru_cache

from fastapi import Depends, Header

from functions.datasets import Dataset, load_dataset
from functions.storage import Store, store_from_env

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
        return x_growthlens_workspace
    return os.environ.get("GROWTHLENS_WORKSPACE", DEFAULT_WORKSPACE)


def get_dataset(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> Dataset:
    """The workspace's current dataset (404 via the app's error handler when there is none)."""
    return load_dataset(store, workspace)
