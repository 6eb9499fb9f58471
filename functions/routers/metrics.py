"""Overview metrics: ``GET /api/metrics/overview`` (totals, period comparison, channel mix, series, insights)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from core import metrics
from functions.datasets import Dataset
from functions.deps import get_dataset, get_workspace
from functions.route_common import END_DOC, GRAN_DOC, START_DOC, cached

router = APIRouter(tags=["metrics"])


class Period(BaseModel):
    start_date: str
    end_date: str
    available: bool = Field(True, description="whether the data covers this period")


class Totals(BaseModel):
    spend: float
    revenue: float = Field(description="business revenue (kpis table; platform revenue when there is none)")
    roas: float | None = Field(description="revenue / spend")
    platform_revenue: float = Field(description="revenue reported by the ad platforms")
    orders: float | None = None
    new_customers: float | None = None


class Change(BaseModel):
    abs: float | None
    pct: float | None = Field(description="relative change as a fraction (0.12 = +12%)")


class ChannelShare(BaseModel):
    channel: str
    spend: float
    platform_revenue: float
    platform_roas: float | None
    share_of_spend: float


class Series(BaseModel):
    dates: list[str] = Field(description="first day of each period")
    granularity: Literal["day", "week", "month"]
    spend: dict[str, list[float | None]]
    revenue: dict[str, list[float | None]] = Field(description="platform revenue per channel")
    total_revenue: list[float | None] | None = Field(None, description="business revenue per period")


class Insight(BaseModel):
    title: str
    text: str
    kind: str


class Overview(BaseModel):
    start_date: str
    end_date: str
    data_start: str = Field(description="first day of data")
    data_end: str = Field(description="last day of data")
    previous: Period
    totals: Totals
    previous_totals: Totals | None
    change: dict[str, Change]
    channels: list[ChannelShare]
    series: Series
    insights: list[Insight]


def kpis_of(ds: Dataset) -> Any:
    """The kpis table when the dataset has one."""
    return ds.table("kpis") if ds.has("kpis") else None


@router.get("/api/metrics/overview", response_model=Overview)
def overview(
    start_date: str | None = Query(None, description=START_DOC),
    end_date: str | None = Query(None, description=END_DOC),
    granularity: str | None = Query(None, description=GRAN_DOC),
    ds: Dataset = Depends(get_dataset),
    workspace: str = Depends(get_workspace),
) -> Any:
    """Total spend, business revenue and ROAS for the range, the change against the preceding period of equal
    length, each channel's spend, platform revenue, platform ROAS and share, series for charts, and quick insights
    computed from the data."""
    key = ("overview", workspace, ds.version, start_date, end_date, granularity)
    return cached(key, lambda: metrics.overview(ds.table("marketing"), kpis_of(ds), start_date, end_date,
                                                granularity))
