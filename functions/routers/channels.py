"""Channels: ``GET /api/channels`` and ``GET /api/channels/{channel}/performance`` (with the model's view once a
marketing mix model has been fitted on the current data)."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from core import metrics
from functions.datasets import Dataset
from functions.deps import get_dataset, get_workspace
from functions.mmm_schemas import ChannelHealth, MeasuredLiftTest, OverallHealth, RecommendedTest
from functions.mmm_service import LoadedModel, get_model_if_fitted
from functions.route_common import END_DOC, GRAN_DOC, START_DOC, cached

router = APIRouter(tags=["channels"])


class ChannelSummary(BaseModel):
    channel: str
    spend: float
    platform_revenue: float
    platform_roas: float | None
    share_of_spend: float


class ChannelList(BaseModel):
    channels: list[ChannelSummary]
    start_date: str
    end_date: str
    data_start: str = Field(description="first day of data")
    data_end: str = Field(description="last day of data")


class PerformanceSeries(BaseModel):
    dates: list[str]
    granularity: Literal["day", "week", "month"]
    spend: list[float | None]
    platform_revenue: list[float | None]
    clicks: list[float | None]
    conversions: list[float | None]
    impressions: list[float | None]
    cpc: list[float | None]
    cpa: list[float | None]
    conversion_rate: list[float | None]
    platform_roas: list[float | None]


class PerformanceTotals(BaseModel):
    spend: float
    platform_revenue: float
    clicks: float
    conversions: float
    impressions: float
    avg_daily_spend: float
    cpc: float | None
    cpa: float | None
    conversion_rate: float | None
    platform_roas: float | None


class PeriodRank(BaseModel):
    label: str
    rank: int
    avg_daily_spend: float
    avg_daily_revenue: float
    platform_roas: float | None
    revenue_index: float | None = Field(description="average daily revenue relative to the mean period (1.0)")
    days: int
    weekday: int | None = Field(None, description="0 = Monday")
    month: int | None = Field(None, description="1 = January")


class Interval(BaseModel):
    mean: float
    low: float
    high: float


class Curve(BaseModel):
    spend: list[float]
    mean: list[float]
    low: list[float] | None = None
    high: list[float] | None = None


class ModelView(BaseModel):
    """The fitted model's view of the channel (daily units)."""

    roas: Interval | None = Field(None, description="incremental ROAS with its 90% interval")
    marginal_roas: float | None = None
    marginal_roas_interval: list[float] | None = None
    current_daily_spend: float | None = None
    optimal_daily_spend: float | None = None
    optimal_daily_spend_interval: list[float] | None = None
    opportunity_per_day: float | None = None
    contribution: float | None = None
    contribution_interval: list[float] | None = None
    share: float | None = None
    platform_roas: float | None = None
    curve: Curve | None = None
    seasonality: dict[str, dict[str, float]] | None = None
    target_roas: float | None = None
    model_start: str | None = None
    model_end: str | None = None
    model_granularity: str | None = Field(None, description="day or week: the periods the model was fitted on")
    health: ChannelHealth | None = Field(None, description="how well the data identify the channel, and what to do")
    model_health: OverallHealth | None = Field(None, description="the model's residual and holdout checks")
    lift_tests: list[MeasuredLiftTest] = Field(default_factory=list, description="the channel's measured lift "
                                                                                 "tests")
    recommended_test: RecommendedTest | None = Field(None, description="a lift test to run before moving its "
                                                                       "budget, when the data cannot pin it down")


class Performance(BaseModel):
    channel: str
    start_date: str
    end_date: str
    series: PerformanceSeries
    totals: PerformanceTotals
    best_weekdays: list[PeriodRank]
    best_months: list[PeriodRank]
    months_range: list[str] = Field(description="the data range the month ranking covers (all the data)")
    model: ModelView | None = None


def _dates(ds: Dataset) -> tuple[pd.Timestamp, pd.Timestamp]:
    d = ds.table("marketing")["date"]
    return d.min(), d.max()


@router.get("/api/channels", response_model=ChannelList)
def channels(
    start_date: str | None = Query(None, description="First day (YYYY-MM-DD); default: the first day of data"),
    end_date: str | None = Query(None, description=END_DOC),
    ds: Dataset = Depends(get_dataset),
    workspace: str = Depends(get_workspace),
) -> Any:
    """Every channel with its spend, platform revenue, platform ROAS and share of spend (default: all the data)."""

    def compute() -> dict[str, Any]:
        lo, hi = _dates(ds)
        s, e = metrics.resolve_range(lo, hi, start_date or lo, end_date)
        return {"channels": metrics.channel_breakdown(ds.table("marketing"), s, e),
                "start_date": s.date().isoformat(), "end_date": e.date().isoformat(),
                "data_start": lo.date().isoformat(), "data_end": hi.date().isoformat()}

    return cached(("channels", workspace, ds.version, start_date, end_date), compute)


def model_view(model: LoadedModel | None, version: str, channel: str) -> dict[str, Any] | None:
    """The channel's entry of the model fitted on this data version, or ``None`` when no model exists yet."""
    if model is None or model.version != version:
        return None
    artifact = model.artifact
    entry = (artifact.get("channels") or {}).get(channel)
    if not entry:
        return None
    from core.mmm.experiment import recommend_tests

    own = {"target_roas", "model_start", "model_end", "model_granularity", "health", "model_health", "lift_tests",
           "recommended_test"}
    keys = set(ModelView.model_fields) - own
    view = {k: entry.get(k) for k in keys if entry.get(k) is not None}
    health = artifact.get("health") or {}
    test = next((t for t in recommend_tests(artifact, model.fixed) if t.channel == channel), None)
    view.update(target_roas=artifact.get("target_roas"), model_start=artifact.get("start"),
                model_end=artifact.get("end"), model_granularity=artifact.get("granularity"),
                health=(health.get("channels") or {}).get(channel),
                model_health=health.get("overall"),
                lift_tests=[t for t in artifact.get("lift_tests") or [] if t.get("channel") == channel],
                recommended_test=test.to_dict() if test is not None else None)
    return view


@router.get("/api/channels/{channel}/performance", response_model=Performance)
def performance(
    channel: str,
    start_date: str | None = Query(None, description=START_DOC),
    end_date: str | None = Query(None, description=END_DOC),
    granularity: str | None = Query(None, description=GRAN_DOC),
    ds: Dataset = Depends(get_dataset),
    workspace: str = Depends(get_workspace),
    model: LoadedModel | None = Depends(get_model_if_fitted),
) -> Any:
    """A channel over time (spend, platform revenue, clicks, conversions, CPC, CPA, conversion rate, platform
    ROAS), its best weekdays (in the range) and months (over all the data); plus ``model`` (incremental ROAS,
    marginal ROAS, current and optimal daily spend, opportunity, response curve, seasonality) once a model exists."""
    marketing = ds.table("marketing")

    def compute() -> dict[str, Any]:
        lo, hi = _dates(ds)
        s, e = metrics.resolve_range(lo, hi, start_date, end_date)
        try:
            perf = metrics.channel_performance(marketing, channel, s, e, granularity)
        except LookupError as err:
            raise HTTPException(status_code=404, detail=str(err)) from err
        return {**perf, "start_date": s.date().isoformat(), "end_date": e.date().isoformat(),
                "best_weekdays": metrics.best_weekdays(marketing, channel, s, e),
                "best_months": metrics.best_months(marketing, channel),
                "months_range": [lo.date().isoformat(), hi.date().isoformat()]}

    out = dict(cached(("performance", workspace, ds.version, channel, start_date, end_date, granularity), compute))
    out["model"] = model_view(model, ds.version, channel)  # not memoised with the rest: a fit may land any moment
    return out
