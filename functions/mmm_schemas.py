"""Response models of the model's health and of lift tests, shared by the models, channels and optimize routes
(kept out of ``functions/routers/`` so no router imports another), and the bounds on the amounts a request may
carry. Fields mirror ``core.mmm.health`` and ``core.mmm.experiment``; the API tests check that no field the core
produces is dropped."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

Status = Literal["identified", "weak", "unidentified", "unavailable"]

# A request's money amounts must be finite and within this bound: a trillion a day is beyond any advertiser, and
# far larger numbers overflow the response curves' arithmetic into answers outside their own intervals.
MAX_DAILY_AMOUNT = 1e12
MAX_PERIOD_AMOUNT = MAX_DAILY_AMOUNT * 366  # per period (up to a year)
# A daily spend per channel (its sign is checked by the route, which names the channel).
DailyAmount = Annotated[float, Field(le=MAX_DAILY_AMOUNT, allow_inf_nan=False)]


class HealthFinding(BaseModel):
    """One problem the data show, the number behind it and what to do about it."""

    kind: str = Field(description="collinear, baseline, joint, flat_spend, rarely_on, wide_interval, "
                                  "autocorrelation or holdout")
    value: float = Field(description="the number behind it (a correlation, a share, a ratio)")
    action: str = Field(description="what to do, with the reason, in plain words")
    detail: str = Field("", description="the reason alone")
    other: str | None = Field(None, description="the channel it moves with (collinear)")


class ChannelHealth(BaseModel):
    """How well the data identify one channel."""

    channel: str
    status: Status
    max_corr: float | None = Field(None, description="largest |r| of its media feature with another channel's")
    max_corr_with: str | None = None
    baseline_corr: float | None = Field(None, description="multiple correlation with season, trend and events")
    vif: float | None = Field(None, description="variance-inflation factor (1 = independent of everything else)")
    spend_cv: float | None = Field(None, description="coefficient of variation of its spend per period")
    zero_share: float | None = Field(None, description="share of periods without spend")
    roas_rel_width: float | None = Field(None, description="90% ROAS interval width relative to the estimate")
    spend_share: float | None = Field(None, description="share of total spend")
    calibrated: bool = Field(False, description="a measured lift test informs it")
    findings: list[HealthFinding] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description="what to do, most important first")


class OverallHealth(BaseModel):
    """Residual structure and holdout accuracy against a naive forecast."""

    status: Literal["good", "caution", "unavailable"]
    residual_lag1: float | None = None
    ljung_box_p: float | None = Field(None, description="p-value of no residual autocorrelation (Ljung-Box)")
    ljung_box_lags: int | None = None
    residual_sd: float | None = Field(None, description="residual sd per period at the recent level (KPI units)")
    holdout_mape: float | None = None
    naive_mape: float | None = None
    naive: str | None = Field(None, description="the naive forecast compared against")
    holdout_ratio: float | None = Field(None, description="holdout_mape / naive_mape: below 1 beats naive")
    holdout_periods: int = 0
    findings: list[HealthFinding] = Field(default_factory=list)


class ModelHealth(BaseModel):
    """The model's health block (``available`` false for a model fitted before health was computed)."""

    available: bool
    granularity: str
    overall: OverallHealth
    channels: dict[str, ChannelHealth]


class RecommendedTest(BaseModel):
    """A lift test recommended instead of a move: the spend change, how long, and what it would tell."""

    channel: str
    status: Status = Field(description="the channel's health status")
    current_daily_spend: float
    spend_change_per_day: float = Field(description="negative: a cut or a pause")
    change_share: float = Field(description="of current spend: -0.5 halve, -1 pause, +1 restart")
    weeks: int = Field(description="length of the test")
    cooldown_days: int = Field(description="read the result out this many days after the test ends (carry-over)")
    expected_lift: float = Field(description="incremental revenue over test and cool-down on the model's curve")
    expected_lift_se: float = Field(description="its standard error from the model's residual noise")
    roas: float
    roas_interval: list[float] = Field(description="90% ROAS interval now")
    roas_interval_after: list[float] = Field(description="expected 90% ROAS interval once the test is measured")
    precision_after: float = Field(description="half-width of that interval relative to the estimate")
    reaches_target: bool = Field(description="whether the test reaches the wanted precision within the maximum "
                                             "length")
    hold: bool = Field(description="the plan keeps the channel at its current spend until the test is read")
    spend_share: float
    reason: str
    action: str


class MeasuredLiftTest(BaseModel):
    """A lift test the fit used, beside the calibrated model's prediction of it."""

    channel: str
    start: str
    end: str
    spend_change_per_day: float
    lift: float
    se: float
    predicted: float
    predicted_interval: list[float]


class ModelHealthResponse(BaseModel):
    """The model's health and the lift tests it recommends and has measured."""

    health: ModelHealth
    tests: list[RecommendedTest]
    lift_tests: list[MeasuredLiftTest]
