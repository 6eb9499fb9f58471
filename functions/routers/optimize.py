"""Budget optimizer and what-if simulator over the fitted model (no refit: the stored artifact is enough).

``POST /api/optimize`` answers a goal (max revenue for a budget, smallest budget for a revenue target, max profit at
a gross margin, spend up to a marginal ROAS) under constraints; ``POST /api/simulate`` projects any daily mix.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from core.mmm.plan import PERIOD_DAYS, detect_fixed_costs, is_fixed_cost, make_plan, simulate
from functions.datasets import NoDataset, current_version, load_dataset
from functions.deps import get_store, get_workspace
from functions.mmm_service import NoModel, require_model
from functions.storage import Store

router = APIRouter(tags=["optimize"])

_CACHE: dict[tuple[int, str, str], tuple[dict[str, Any], set[str]]] = {}
_LOCK = threading.Lock()


def model_and_fixed(store: Store, workspace: str) -> tuple[dict[str, Any], set[str]]:
    """The current artifact and its fixed-cost channels (flagged in the model or flat monthly fees in the data),
    cached per process and data version so a slider move costs no store reads beyond the version pointer."""
    try:
        version = current_version(store, workspace)["version"]
    except NoDataset as e:
        raise HTTPException(status_code=404, detail=str(e)) from e
    key = (id(store), workspace, version)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    try:
        model = require_model(store, workspace)
    except NoModel as e:
        raise HTTPException(status_code=404, detail=str(e)) from e
    fixed = {n for n, ch in model["channels"].items() if is_fixed_cost(n, ch)}
    try:
        ds = load_dataset(store, workspace)
        fixed |= detect_fixed_costs(ds.table("marketing")) & set(model["channels"])
    except NoDataset:
        pass
    with _LOCK:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = (model, fixed)
    return model, fixed


class OptimizeRequest(BaseModel):
    """A budget question. Amounts of ``min``/``max`` are daily spend; ``budget`` is per ``period``."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    goal: Literal["max_revenue", "min_budget", "max_profit", "target_mroas"] = "max_revenue"
    period: Literal["day", "week", "month", "year"] = "day"
    daily_budget: float | None = Field(None, gt=0, description="total daily budget (default: current daily spend)")
    budget: float | None = Field(None, gt=0, description="total budget per period (instead of daily_budget)")
    max_change: float | None = Field(None, ge=0, le=10, description="max relative change per channel, 0.3 = ±30%")
    min_spend: dict[str, float] = Field(default_factory=dict, alias="min")
    max_spend: dict[str, float] = Field(default_factory=dict, alias="max")
    locked: list[str] = Field(default_factory=list)
    target_revenue: float | None = Field(None, gt=0, description="goal min_budget: total revenue per period")
    margin: float | None = Field(None, gt=0, le=1, description="goal max_profit: gross margin")
    target_mroas: float | None = Field(None, gt=0, description="goal target_mroas: marginal ROAS to spend down to")
    risk_aware: bool = Field(True, description="value moves at the model's 25% quantile (stay close when unsure)")
    fixed: list[str] | None = Field(None, description="fixed-cost channels (default: flagged in the model "
                                                      "or paid as flat monthly fees in the data)")


class SimulateRequest(BaseModel):
    """A daily spend mix; channels left out keep their current spend."""

    model_config = ConfigDict(extra="forbid")

    allocation: dict[str, float] = Field(default_factory=dict)


def _check_amounts(what: str, amounts: dict[str, float]) -> None:
    for ch, v in amounts.items():
        if not v >= 0:
            raise HTTPException(status_code=422, detail=f"{what}[{ch!r}] must be a non-negative daily amount ({v})")


@router.post("/api/optimize")
def optimize(body: OptimizeRequest, store: Store = Depends(get_store),
             workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """The recommended daily spend per channel with projected revenue and lift (90% intervals) and the constraints
    that bind. Default budget: the current total daily spend."""
    model, fixed = model_and_fixed(store, workspace)
    if body.daily_budget is not None and body.budget is not None:
        raise HTTPException(status_code=422, detail="give either daily_budget or budget (per period), not both")
    _check_amounts("min", body.min_spend)
    _check_amounts("max", body.max_spend)
    unknown = sorted(set(body.fixed or []) - set(model["channels"]))
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown channel(s) in fixed: {', '.join(unknown)}; known: "
                                                    f"{', '.join(model['channels'])}")
    daily = body.daily_budget
    if body.budget is not None:
        daily = body.budget / PERIOD_DAYS[body.period]
    plan = make_plan(
        model, goal=body.goal, daily_budget=daily, period=body.period, max_change=body.max_change,
        min_spend=body.min_spend, max_spend=body.max_spend, locked=body.locked, target_revenue=body.target_revenue,
        margin=body.margin, target_mroas=body.target_mroas, fixed=fixed if body.fixed is None else body.fixed,
        risk_quantile=0.25 if body.risk_aware else None,
    )
    plan["model"] = {"end": model.get("end"), "data_version": model.get("data_version"),
                     "granularity": model.get("granularity")}
    return plan


@router.post("/api/simulate")
def what_if(body: SimulateRequest, store: Store = Depends(get_store),
            workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Projected daily revenue of a spend mix and its lift over the current mix, per channel too (90% intervals)."""
    model, fixed = model_and_fixed(store, workspace)
    _check_amounts("allocation", body.allocation)
    return simulate(model, body.allocation, fixed=fixed)
