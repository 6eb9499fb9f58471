"""Revenue forecast: daily revenue for the next days at a planned spend, with its backtest against naive forecasts.

Computed from the stored model and the current dataset (no refit of the media model); cached per process by data
version, horizon and planned spend.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from core.mmm.forecast import forecast_revenue
from functions.datasets import load_dataset
from functions.deps import get_store, get_workspace
from functions.mmm_service import wide_from_dataset
from functions.routers.optimize import model_and_fixed
from functions.storage import Store

router = APIRouter(tags=["forecast"])

_CACHE: dict[tuple, dict[str, Any]] = {}
_LOCK = threading.Lock()


class ForecastRequest(BaseModel):
    """Horizon and planned daily spend per channel (channels left out keep their current run rate)."""

    model_config = ConfigDict(extra="forbid")

    days: int = Field(90, ge=1, le=730)
    spend: dict[str, float] = Field(default_factory=dict)


def _forecast(store: Store, workspace: str, days: int, spend: dict[str, float]) -> dict[str, Any]:
    model, fixed = model_and_fixed(store, workspace)
    for ch, v in spend.items():
        if not v >= 0:
            raise HTTPException(status_code=422, detail=f"spend[{ch!r}] must be a non-negative daily amount ({v})")
    ds = load_dataset(store, workspace)
    key = (id(store), workspace, ds.version, model.get("end"), model.get("seed"), days,
           tuple(sorted(spend.items())))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    wide, _, _, factors = wide_from_dataset(ds)
    out = forecast_revenue(model, wide, factors, days=days, spend=spend, fixed=fixed)
    with _LOCK:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = out
    return out


@router.get("/api/forecast")
def forecast_get(days: int = Query(90, ge=1, le=730), store: Store = Depends(get_store),
                 workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Daily revenue for the next ``days`` at the current run rate, with a 90% interval and the 8-week backtest."""
    return _forecast(store, workspace, days, {})


@router.post("/api/forecast")
def forecast_post(body: ForecastRequest, store: Store = Depends(get_store),
                  workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Daily revenue for the next ``days`` at a planned daily spend per channel, with a 90% interval."""
    return _forecast(store, workspace, body.days, dict(body.spend))
