"""Revenue forecast: daily revenue for the next days at a planned spend, with its backtest against naive forecasts.

Computed from the stored model and the current dataset (no refit of the media model); cached per process by data
version, horizon and planned spend.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from core.mmm.forecast import forecast_revenue
from functions.datasets import load_dataset
from functions.deps import get_store, get_workspace
from functions.mmm_service import LoadedModel, get_model, wide_from_dataset
from functions.route_common import cached, check_daily_amounts
from functions.storage import Store

router = APIRouter(tags=["forecast"])


class ForecastRequest(BaseModel):
    """Horizon and planned daily spend per channel (channels left out keep their current run rate)."""

    model_config = ConfigDict(extra="forbid")

    days: int = Field(90, ge=1, le=730)
    spend: dict[str, float] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------- responses
class ForecastTotal(BaseModel):
    """The forecast summed over the horizon."""

    mean: float = Field(description="expected revenue over all the days ahead")
    days: int


class ForecastHistory(BaseModel):
    """Recent actual daily revenue (the last 180 days), to draw next to the forecast."""

    dates: list[str]
    actual: list[float | None] = Field(description="daily revenue; null on a day without data")


class ForecastEvent(BaseModel):
    """A dated external factor (holiday, promotion) in the horizon, given or projected from its history."""

    date: str
    name: str


class Backtest(BaseModel):
    """The last ``weeks`` weeks forecast from the data before them, against seasonal-naive forecasts."""

    weeks: int
    start: str = Field(description="first day of the backtest weeks")
    end: str = Field(description="last day of the backtest weeks")
    mape: float = Field(description="mean absolute percentage error of the forecast (0.05 = 5%)")
    naive_mape: float = Field(description="MAPE of the best naive forecast")
    naive: str = Field(description="which naive forecast did best, e.g. 'same weekday last year'")
    naive_mapes: dict[str, float] = Field(description="MAPE of each naive forecast tried")
    coverage: float = Field(description="share of days whose actual revenue fell inside the 90% interval")
    dates: list[str]
    actual: list[float]
    forecast: list[float]
    low: list[float]
    high: list[float]
    naive_forecast: list[float] = Field(description="daily values of the best naive forecast")


class BacktestUnavailable(BaseModel):
    """No backtest: the history is too short; ``error`` says what it needs."""

    weeks: int
    mape: None = None
    naive_mape: None = None
    error: str


class ForecastResponse(BaseModel):
    """Daily revenue for the days after the data (baseline + paid media), with a 90% interval."""

    dates: list[str] = Field(description="the days ahead, from the day after the data ends")
    mean: list[float] = Field(description="expected daily revenue")
    low: list[float] = Field(description="5% quantile of daily revenue")
    high: list[float] = Field(description="95% quantile of daily revenue")
    baseline: list[float] = Field(description="daily revenue expected without paid media")
    media: list[float] = Field(description="daily revenue from paid media at the planned spend")
    total: ForecastTotal
    spend: dict[str, float] = Field(description="planned daily spend per channel")
    spend_per_day: float = Field(description="planned total daily spend")
    history: ForecastHistory
    events: list[ForecastEvent]
    backtest: Backtest | BacktestUnavailable | None


def _forecast(store: Store, workspace: str, loaded: LoadedModel, days: int,
              spend: dict[str, float]) -> dict[str, Any]:
    model = loaded.artifact
    check_daily_amounts("spend", spend)
    ds = load_dataset(store, workspace)
    key = ("forecast", id(store), workspace, ds.version, model.get("end"), model.get("seed"), days,
           tuple(sorted(spend.items())))

    def compute() -> dict[str, Any]:
        wide, _, _, factors = wide_from_dataset(ds)
        return forecast_revenue(model, wide, factors, days=days, spend=spend, fixed=set(loaded.fixed))

    return cached(key, compute)


@router.get("/api/forecast", response_model=ForecastResponse)
def forecast_get(days: int = Query(90, ge=1, le=730), store: Store = Depends(get_store),
                 workspace: str = Depends(get_workspace), model: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """Daily revenue for the next ``days`` at the current run rate, with a 90% interval and the 8-week backtest."""
    return _forecast(store, workspace, model, days, {})


@router.post("/api/forecast", response_model=ForecastResponse)
def forecast_post(body: ForecastRequest, store: Store = Depends(get_store), workspace: str = Depends(get_workspace),
                  model: LoadedModel = Depends(get_model)) -> dict[str, Any]:
    """Daily revenue for the next ``days`` at a planned daily spend per channel, with a 90% interval."""
    return _forecast(store, workspace, model, body.days, dict(body.spend))
