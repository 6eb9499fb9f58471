"""Budget optimizer and what-if simulator over the fitted model (no refit: the stored artifact is enough).

``POST /api/optimize`` answers a goal (max revenue for a budget, smallest budget for a revenue target, max profit at
a gross margin, spend up to a marginal ROAS) under constraints; ``POST /api/simulate`` projects any daily mix.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from core.mmm.plan import PERIOD_DAYS, make_plan, simulate
from functions.mmm_schemas import MAX_DAILY_AMOUNT, MAX_PERIOD_AMOUNT, DailyAmount, RecommendedTest
from functions.mmm_service import LoadedModel, get_model
from functions.route_common import check_daily_amounts

router = APIRouter(tags=["optimize"])

Goal = Literal["max_revenue", "min_budget", "max_profit", "target_mroas"]
Period = Literal["day", "week", "month", "year"]


class OptimizeRequest(BaseModel):
    """A budget question. Amounts of ``min``/``max`` are daily spend; ``budget`` is per ``period``. Every number
    must be finite; daily amounts at most ``MAX_DAILY_AMOUNT``, per-period ones ``MAX_PERIOD_AMOUNT``."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", allow_inf_nan=False)

    goal: Goal = "max_revenue"
    period: Period = "day"
    daily_budget: float | None = Field(None, gt=0, le=MAX_DAILY_AMOUNT,
                                       description="total daily budget (default: current daily spend)")
    budget: float | None = Field(None, gt=0, le=MAX_PERIOD_AMOUNT,
                                 description="total budget per period (instead of daily_budget)")
    max_change: float | None = Field(None, ge=0, le=10, description="max relative change per channel, 0.3 = ±30%")
    min_spend: dict[str, DailyAmount] = Field(default_factory=dict, alias="min")
    max_spend: dict[str, DailyAmount] = Field(default_factory=dict, alias="max")
    locked: list[str] = Field(default_factory=list)
    target_revenue: float | None = Field(None, gt=0, le=MAX_PERIOD_AMOUNT,
                                         description="goal min_budget: total revenue per period")
    margin: float | None = Field(None, gt=0, le=1, description="goal max_profit: gross margin")
    target_mroas: float | None = Field(None, gt=0, le=1e6,
                                       description="goal target_mroas: marginal ROAS to spend down to")
    risk_aware: bool = Field(True, description="value moves at the model's 25% quantile (stay close when unsure)")
    fixed: list[str] | None = Field(None, description="fixed-cost channels (default: flagged in the model "
                                                      "or paid as flat monthly fees in the data)")
    test_first: bool = Field(True, description="keep a large channel the data cannot identify at its current "
                                               "spend and recommend a lift test for it instead of a move")


class SimulateRequest(BaseModel):
    """A daily spend mix; channels left out keep their current spend. Amounts must be finite, at most
    ``MAX_DAILY_AMOUNT`` a day."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    allocation: dict[str, DailyAmount] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------- responses
class PlanChannel(BaseModel):
    """One channel of a plan: current against recommended daily spend."""

    channel: str
    current: float = Field(description="current daily spend (mean of the last 4 weeks)")
    optimized: float = Field(description="recommended daily spend")
    change: float = Field(description="optimized − current, per day")
    change_pct: float | None = Field(description="change relative to current (0.1 = +10%); null when current is 0")
    arrow: str = Field(description="↑ more, ↓ less, → about the same (within 2%)")
    marginal_roas_before: float = Field(description="revenue of the next dollar per day at the current spend")
    marginal_roas_after: float = Field(description="revenue of the next dollar per day at the optimized spend")
    revenue_before: float = Field(description="daily incremental revenue at the current spend (mean over draws)")
    revenue_after: float = Field(description="daily incremental revenue at the optimized spend (mean over draws)")
    bound: str | None = Field(description="the constraint that holds the channel: locked, fixed cost, minimum, "
                                          "maximum, maximum change or lift test first; null when none binds")
    fixed_cost: bool = Field(description="a flat fee: counted in the budget, never moved")
    locked: bool = Field(description="kept at its current spend by the request")
    prob_gain: float | None = Field(description="share of the model's draws in which this move gains revenue, "
                                                "against what its money earns in the plan's other moves; null when "
                                                "the channel does not move")
    held_back: str | None = Field(description="why the plan keeps the channel nearer its current spend than the "
                                              "model's best guess (uncertainty, the guard, a cap, a lift test "
                                              "first); null when it is not held back")


class PlanProjection(BaseModel):
    """Projected paid-media revenue of the plan against the current mix; intervals are 90% (paired draws)."""

    current_revenue: float = Field(description="daily media revenue of the current mix")
    revenue: float = Field(description="daily media revenue of the plan")
    revenue_low: float
    revenue_high: float
    lift_per_day: float = Field(description="plan − current daily media revenue")
    lift_per_day_low: float
    lift_per_day_high: float
    lift_per_year: float
    lift_per_year_low: float
    lift_per_year_high: float
    prob_positive_lift: float = Field(description="share of the model's draws in which the plan beats the current mix")
    baseline_per_day: float = Field(description="daily revenue expected without paid media")
    total_revenue_per_day: float = Field(description="baseline + media revenue of the plan, per day")
    revenue_per_period: float = Field(description="media revenue of the plan per period")
    revenue_per_period_low: float
    revenue_per_period_high: float
    lift_per_period: float
    lift_per_period_low: float
    lift_per_period_high: float
    budget_per_period: float = Field(description="the plan's total spend per period")


class PlanModelInfo(BaseModel):
    """The model the plan comes from."""

    end: str | None = Field(description="last day of the data the model was fitted on")
    data_version: str | None
    granularity: str | None = Field(description="day or week: the rows the model was fitted on")


class OptimizeResponse(BaseModel):
    """A budget plan: daily amounts per channel, the projection and the notes that explain it."""

    goal: Goal
    period: Period
    days_per_period: float = Field(description="days in the period the per-period figures cover")
    budget: float | None = Field(description="total daily budget the plan spends up to (null for max_profit and "
                                             "target_mroas, which have no cap)")
    total_current: float = Field(description="current total daily spend")
    total_optimized: float = Field(description="recommended total daily spend")
    allocation: dict[str, float] = Field(description="recommended daily spend per channel")
    current: dict[str, float] = Field(description="current daily spend per channel")
    channels: list[PlanChannel]
    projection: PlanProjection
    notes: list[str] = Field(description="plain-language notes: binding constraints, uncertainty, caps")
    tests: list[RecommendedTest] = Field(description="lift tests recommended before moving channels the data "
                                                     "cannot pin down, largest share of spend first")
    model: PlanModelInfo


class RevenueRange(BaseModel):
    """Daily media revenue with its 90% interval."""

    mean: float
    low: float
    high: float


class SimulatedLift(BaseModel):
    """The mix's daily media revenue minus the current mix's, with 90% intervals (paired draws)."""

    per_day: float
    per_day_low: float
    per_day_high: float
    per_year: float
    per_year_low: float
    per_year_high: float
    prob_positive: float = Field(description="share of the model's draws in which the mix beats the current one")


class SimulatedSpend(BaseModel):
    """Total daily spend of the mix against the current one."""

    per_day: float
    current_per_day: float
    change_per_day: float


class SimulatedChannel(BaseModel):
    """One channel of a simulated mix (daily amounts; intervals 90%)."""

    channel: str
    spend: float = Field(description="simulated daily spend")
    current_spend: float = Field(description="current daily spend")
    fixed_cost: bool = Field(description="a flat fee: its revenue does not change with its spend")
    revenue: float = Field(description="daily incremental revenue at the simulated spend")
    revenue_low: float
    revenue_high: float
    current_revenue: float = Field(description="daily incremental revenue at the current spend")
    lift: float = Field(description="revenue − current_revenue")
    lift_low: float
    lift_high: float


class SimulateResponse(BaseModel):
    """Projected daily media revenue of a spend mix against the current mix."""

    revenue: RevenueRange
    current_revenue: RevenueRange
    lift: SimulatedLift
    spend: SimulatedSpend
    channels: list[SimulatedChannel]


@router.post("/api/optimize", response_model=OptimizeResponse)
def optimize(body: OptimizeRequest, loaded: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """The recommended daily spend per channel with projected revenue and lift (90% intervals) and the constraints
    that bind. Default budget: the current total daily spend."""
    model, fixed = loaded.artifact, loaded.fixed
    if body.daily_budget is not None and body.budget is not None:
        raise HTTPException(status_code=422, detail="give either daily_budget or budget (per period), not both")
    check_daily_amounts("min", body.min_spend)
    check_daily_amounts("max", body.max_spend)
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
        risk_quantile=0.25 if body.risk_aware else None, test_first=body.test_first,
    )
    plan["model"] = {"end": model.get("end"), "data_version": model.get("data_version"),
                     "granularity": model.get("granularity")}
    return plan


@router.post("/api/simulate", response_model=SimulateResponse)
def what_if(body: SimulateRequest, loaded: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """Projected daily revenue of a spend mix and its lift over the current mix, per channel too (90% intervals)."""
    check_daily_amounts("allocation", body.allocation)
    return simulate(loaded.artifact, body.allocation, fixed=loaded.fixed)
