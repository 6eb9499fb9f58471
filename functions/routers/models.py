"""Marketing mix model: start a fit, read the fitted artifact, response curves, decomposition and insights.

The model is fitted once per data version (a job); routes read it through ``Depends(get_model)`` (loaded once per
process and data version, 404 saying why when there is none); nothing here refits.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from functions.deps import get_store, get_workspace
from functions.mmm_schemas import ModelHealthResponse
from functions.mmm_service import LoadedModel, get_model, model_status, start_fit
from functions.storage import Store

router = APIRouter(tags=["models"])


class FitRequest(BaseModel):
    """Options for a fit; defaults suit most data."""

    seed: int = Field(0, description="random seed of the bootstrap (same seed, same result)")
    n_boot: int | None = Field(None, ge=20, le=1000, description="bootstrap refits for the 90% intervals")
    target_roas: float = Field(1.0, gt=0, description="marginal ROAS at which spend is called optimal")
    country: str | None = Field(None, min_length=2, max_length=3, pattern="^[A-Za-z]{2,3}$",
                                description="ISO country whose public holidays enter the baseline when the data "
                                            "name no events (default US)")
    kpi_form: Literal["auto", "additive", "log"] = Field(
        "auto", description="additive KPI, log (a multiplicative business) or auto: chosen by rolling-origin "
                            "cross-validation")


@router.post("/api/models", status_code=202)
def fit_model(
    body: FitRequest | None = None, store: Store = Depends(get_store), workspace: str = Depends(get_workspace)
) -> dict[str, Any]:
    """Start fitting the model on the current data; answers at once with a job (poll ``GET /api/jobs/{id}``)."""
    params = (body or FitRequest()).model_dump(exclude_none=True)
    job = start_fit(store, workspace, params)
    return {"job": {k: job[k] for k in ("id", "kind", "status", "progress", "message")}}


@router.get("/api/models/status")
def status(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Whether the current data has a fitted model, and the latest fit job."""
    return model_status(store, workspace)


@router.get("/api/models/latest")
def latest(model: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """The fitted model artifact of the current data version (channels, fit diagnostics, decomposition, health)."""
    return model.artifact


@router.get("/api/models/health", response_model=ModelHealthResponse)
def health(model: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """How well the data identify each channel, residual structure and holdout accuracy against a naive forecast,
    each problem with what to do; the lift tests recommended before moving money, and those already measured."""
    from core.mmm.experiment import recommend_tests

    art = model.artifact
    return {"health": art["health"], "tests": [t.to_dict() for t in recommend_tests(art, model.fixed)],
            "lift_tests": art.get("lift_tests") or []}


def _channel(model: dict[str, Any], channel: str) -> dict[str, Any]:
    chans = model["channels"]
    if channel not in chans:
        raise HTTPException(
            status_code=404, detail=f"unknown channel {channel!r}; the model has: {', '.join(sorted(chans))}"
        )
    return chans[channel]


@router.get("/api/channels/{channel}/curve")
def curve(channel: str, loaded: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """A channel's response curve (daily spend → daily incremental revenue, 90% band) with current and optimal spend."""
    model = loaded.artifact
    ch = _channel(model, channel)
    keys = ("curve", "current_daily_spend", "optimal_daily_spend", "optimal_daily_spend_interval", "marginal_roas",
            "marginal_roas_interval", "opportunity_per_day", "roas", "adstock", "saturation", "platform_roas",
            "contribution", "contribution_interval", "share", "seasonality", "fixed_cost")
    return {"channel": channel, "target_roas": model.get("target_roas", 1.0), **{k: ch.get(k) for k in keys},
            "health": model["health"]["channels"].get(channel)}


_FREQ = {"day": "D", "week": "W-SUN", "month": "MS"}


@router.get("/api/contributions")
def contributions(
    granularity: Literal["day", "week", "month"] = Query("week"),
    start_date: str | None = None,
    end_date: str | None = None,
    model: LoadedModel = Depends(get_model),
) -> dict[str, Any]:
    """Revenue decomposed into baseline and each channel's incremental contribution, per day/week/month."""
    dec = model.artifact["decomposition"]
    frame = pd.DataFrame({"actual": dec["actual"], "fitted": dec["fitted"], "baseline": dec["baseline"],
                          **dec["channels"]}, index=pd.to_datetime(dec["dates"]))
    try:
        start = pd.Timestamp(start_date) if start_date else frame.index.min()
        end = pd.Timestamp(end_date) if end_date else frame.index.max()
    except ValueError as e:
        raise HTTPException(status_code=422, detail=f"bad date: {e}") from e
    if end < start:
        raise HTTPException(status_code=422, detail=f"end_date {end.date()} is before start_date {start.date()}")
    frame = frame.loc[start:end]
    if granularity != "day" and len(frame) > 1:
        freq = _FREQ[granularity]
        if granularity == "week":
            frame = frame.resample(freq, label="left", closed="left").sum()
        else:
            frame = frame.resample(freq).sum()
    channels = list(dec["channels"])
    totals = frame[["baseline", *channels]].sum()
    return {
        "granularity": granularity,
        "dates": [d.strftime("%Y-%m-%d") for d in frame.index],
        "actual": frame["actual"].round(2).tolist(),
        "fitted": frame["fitted"].round(2).tolist(),
        "baseline": frame["baseline"].round(2).tolist(),
        "channels": {c: frame[c].round(2).tolist() for c in channels},
        "totals": {k: round(float(v), 2) for k, v in totals.items()},
    }


@router.get("/api/insights")
def insights(model: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """Plain-language findings computed from the fitted model, most money at stake first; the headline is the
    same-budget reallocation that ``POST /api/optimize`` recommends by default."""
    from core.mmm.insights import model_insights
    from core.mmm.plan import make_plan

    try:
        plan = make_plan(model.artifact, fixed=model.fixed)
    except ValueError:  # e.g. every channel a fixed cost: nothing to reallocate
        plan = None
    return {"insights": model_insights(model.artifact, plan)}
