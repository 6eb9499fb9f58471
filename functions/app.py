"""The Growthlens HTTP API: one FastAPI app assembled from route groups.

Each route group lives in ``functions/routers/<group>.py`` and exposes ``router``. ``functions/handlers.py`` wraps
each group in its own Mangum handler for Lambda; locally ``growthlens serve`` runs the whole app with uvicorn.
"""

from __future__ import annotations

import importlib
import logging
import os

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from functions.audit import audit
from functions.auth import authorize
from functions.datasets import NoDataset
from functions.request_limits import RequestLimits
from functions.security_headers import SecurityHeaders

log = logging.getLogger(__name__)



def discover_groups() -> list[str]:
    """Every module in ``functions/routers/`` that defines ``router`` (one Lambda per group in template.yaml)."""
    import pkgutil

    import functions.routers as pkg

    names = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            names.append(info.name)
    return names


ROUTE_GROUPS: list[str] = discover_groups()


# groups whose routes authenticate themselves: health is open, the sync routes check the source's signature (or a
# key, functions/routers/sync.py); every other group's routes need credentials (functions/auth.py)
SELF_AUTHENTICATED_GROUPS = frozenset({"health", "sync"})


def include_groups(app: FastAPI, groups: list[str]) -> None:
    """Mount the routers of the named groups on ``app``, each behind :func:`functions.auth.authorize` and
    :func:`functions.audit.audit` unless it authenticates its routes itself."""
    for name in groups:
        module = importlib.import_module(f"functions.routers.{name}")
        deps = [] if name in SELF_AUTHENTICATED_GROUPS else [Depends(authorize), Depends(audit)]
        app.include_router(module.router, dependencies=deps)


def create_app(groups: list[str] | None = None) -> FastAPI:
    """Build the API with the given route groups (all by default)."""
    app = FastAPI(
        title="Growthlens API",
        version="0.1.0",
        description="Marketing mix modeling, attribution and customer data for direct-to-consumer brands.",
    )
    origins = [o.strip() for o in os.environ.get("GROWTHLENS_CORS_ORIGINS", "").split(",") if o.strip()]
    if origins:  # browsers may call the API from these origins only (the dashboard calls it server-side)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Growthlens-Api-Key"])
    app.add_middleware(SecurityHeaders)  # nosniff, no framing, no-store on /api/ (functions/security_headers.py)
    app.add_middleware(RequestLimits)  # body size per route, JSON depth (see functions/request_limits.py)

    @app.exception_handler(NoDataset)
    async def _no_dataset(_: Request, exc: NoDataset) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    include_groups(app, groups if groups is not None else ROUTE_GROUPS)
    return app


app = create_app()
