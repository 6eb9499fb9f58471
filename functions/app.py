"""The Growthlens HTTP API: one FastAPI app assembled from route groups.

Each route group lives in ``functions/routers/<group>.py`` and exposes ``router``. ``functions/handlers.py`` wraps
each group in its own Mangum handler for Lambda; locally ``growthlens serve`` runs the whole app with uvicorn.
"""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from functions.datasets import NoDataset
from functions.request_limits import RequestLimits

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


def include_groups(app: FastAPI, groups: list[str]) -> None:
    """Mount the routers of the named groups on ``app``."""
    for name in groups:
        module = importlib.import_module(f"functions.routers.{name}")
        app.include_router(module.router)


def create_app(groups: list[str] | None = None) -> FastAPI:
    """Build the API with the given route groups (all by default)."""
    app = FastAPI(
        title="Growthlens API",
        version="0.1.0",
        description="Marketing mix modeling, attribution and customer data for direct-to-consumer brands.",
    )
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
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
