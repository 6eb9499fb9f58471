"""Test instead of move: lift tests designed for the channels the data cannot pin down.

Where a channel's ROAS interval is wide (health ``weak`` or ``unidentified``) and it carries a real share of the
budget, moving money on the model's word is a guess; an experiment settles it. For such a channel this module
designs a lift test from the fitted model alone:

- the spend change: halve the channel's daily spend, or pause it (a channel that is off gets restarted at its
  average spend); the one that reaches the wanted precision at the smallest cost (revenue forgone net of the spend
  saved) wins;
- the read-out: the test period plus a cool-down until the channel's carry-over has faded below 5%, so the lift
  measured counts the delayed effect (``core.mmm.lift``'s ``measured_until``);
- the power, from the model's residual noise: the expected lift is the model's own curve at the changed spend over
  the window, its standard error ``σ·√(periods·(1+ρ)/(1−ρ))`` with σ the residual sd per period at the recent level
  and ρ the residuals' lag-1 autocorrelation (noise that persists adds up faster than independent noise);
- what the measurement teaches, from the model's own draws: each bootstrap draw predicts the test's lift and the
  channel's ROAS; measuring the lift with that standard error shrinks the ROAS's spread by
  ``√(1 − r²·var(lift)/(var(lift) + se²))`` (a linear-Gaussian update, r the correlation of the two over the
  draws, var(lift) scaled by how much wider the reported ROAS interval is than the draws' own spread, se inflated
  by ``SE_INFLATION``, measured). A pause measures the return at current spend itself (r near 1); a halving
  measures the upper half of the curve, which says less about the average where the curve's shape is uncertain;
- the weeks: the fewest (``MIN_WEEKS`` to ``MAX_WEEKS``) after which the channel's 90% ROAS interval would be
  ±``TARGET_PRECISION`` of the estimate. When even the longest test does not get there the design says so and how
  far it gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.mmm.adstock import carryover
from core.mmm.health import ChannelHealth, ModelHealth, health_of
from core.mmm.response import response

__all__ = ["MAX_WEEKS", "MIN_WEEKS", "TARGET_PRECISION", "TEST_MIN_SPEND_SHARE", "TestDesign", "design_test",
           "recommend_tests"]

TARGET_PRECISION = 0.25  # wanted half-width of the 90% ROAS interval after the test, relative to the estimate
MIN_WEEKS, MAX_WEEKS = 3, 12  # shortest test worth running; longest a business will hold a channel changed
TEST_MIN_SPEND_SHARE = 0.03  # channels with less of the budget are not worth a test (and cannot move the plan)
CHANGES = (-0.5, -1.0)  # candidate spend changes, as a share of current spend: halve, pause
CARRYOVER_TAIL = 0.05  # read out until less than this share of the change's effect is still to come
# The test's standard error is inflated by this before the update: the measured lift is one point of an uncertain
# curve, redrawn in the bootstrap, and reported intervals are widened. Measured on 23 designed tests of collinear
# channels (six daily and six weekly worlds, the true lift measured): the fit's 90% ROAS interval afterwards was as
# wide as the design promised in the median (ratio 1.00; 2.3 when inflated by the intervals' own 1.2 only).
SE_INFLATION = 3.5
MAX_AUTOCORR = 0.9  # residual lag-1 autocorrelation used for the noise, at most
Z90 = 1.6448536269514722  # half-width of a 90% normal interval in standard errors
TESTABLE = ("weak", "unidentified")


@dataclass
class TestDesign:
    """A recommended lift test: what to change, for how long, and what it would tell."""

    channel: str
    status: str  # the channel's health status
    current_daily_spend: float
    spend_change_per_day: float  # negative: a cut or a pause
    change_share: float  # of current spend: -0.5 halve, -1.0 pause, +1.0 restart
    weeks: int  # test period
    cooldown_days: int  # read the result out this many days after the test ends
    expected_lift: float  # incremental KPI over test + cool-down, on the model's curve
    expected_lift_se: float  # its standard error from the model's residual noise
    roas: float
    roas_interval: list[float]  # 90%, now
    roas_interval_after: list[float]  # 90%, expected once the test is measured
    precision_after: float  # half-width of that interval relative to the estimate
    reaches_target: bool  # within ±TARGET_PRECISION by MAX_WEEKS
    hold: bool  # the plan keeps the channel at its current spend until the test is read (unidentified)
    spend_share: float
    reason: str
    action: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (API boundary)."""
        return asdict(self)


def _cooldown_periods(decay: float, stages: int) -> tuple[int, np.ndarray]:
    """Periods after a change until less than ``CARRYOVER_TAIL`` of its effect is still to come, and the
    carry-over kernel (weights per lag, summing to 1)."""
    L = 400
    k = carryover(np.r_[1.0, np.zeros(L - 1)], float(np.clip(decay, 0.0, 0.99)), max(int(stages), 1))
    cum = np.cumsum(k)
    return int(np.searchsorted(cum, 1.0 - CARRYOVER_TAIL)), k


def _captured(kernel: np.ndarray, test_periods: int, window: int) -> float:
    """Share of a ``test_periods``-long change's effect that lands inside the first ``window`` periods."""
    cum = np.cumsum(kernel)
    lags_left = window - 1 - np.arange(test_periods)  # lags of each test period's effect still inside the window
    return float(cum[np.clip(lags_left, 0, len(cum) - 1)].sum() / test_periods)


def _teaching(ch: Mapping[str, Any], cur: float, delta: float, ref: float, rel_now: float
              ) -> tuple[float, float, float]:
    """Daily steady-state lift of the change on the model's curve, its sd as uncertain as the reported interval,
    and its correlation with the channel's ROAS at ``ref`` spend over the draws (without draws: fully
    informative)."""
    point = float(response(ch, max(cur + delta, 0.0)) - response(ch, cur))
    sure = abs(point) * rel_now / Z90  # the lift's sd if it were as uncertain as the reported ROAS
    try:
        d = response(ch, np.array([cur, max(cur + delta, 0.0), ref]), draws=True)
    except ValueError:
        return point, sure, 1.0
    lift, roas = d[:, 1] - d[:, 0], d[:, 2] / max(ref, 1e-9)
    if lift.std() <= 0 or roas.std() <= 0 or roas.mean() <= 0:
        return point, sure, 1.0
    widen = rel_now / Z90 / (roas.std() / roas.mean())  # reported interval against the draws' own spread
    return point, float(lift.std() * widen), float(np.corrcoef(lift, roas)[0, 1])


def _plural(k: int, unit: str) -> str:
    return f"{k} {unit}" + ("" if k == 1 else "s")


def _what(name: str, share: float, delta: float, weeks: int) -> str:
    amount = f"${abs(delta):,.0f}/day"
    owner = f"{name}'" if name.endswith("s") else f"{name}'s"
    if share <= -1.0:
        return f"Pause {name} ({amount}) for {_plural(weeks, 'week')}"
    if share < 0:
        return f"Cut {owner} spend by {abs(share):.0%} ({amount} less) for {_plural(weeks, 'week')}"
    return f"Restart {name} at {amount} for {_plural(weeks, 'week')}"


def design_test(artifact: Mapping[str, Any], channel: str, health: ModelHealth | None = None, *,
                precision: float = TARGET_PRECISION, max_weeks: int = MAX_WEEKS) -> TestDesign | None:
    """A lift test for ``channel`` that narrows its ROAS interval to ±``precision`` (see module docs); None when
    the model's health is unavailable or the channel has no estimate to test."""
    health = health or health_of(artifact)
    ch = (artifact.get("channels") or {}).get(channel)
    h: ChannelHealth | None = health.channels.get(channel)
    sigma = health.overall.residual_sd
    if ch is None or h is None or not health.available or not sigma or sigma <= 0:
        return None
    r = ch.get("roas") or {}
    mean, lo, hi = float(r.get("mean") or 0.0), float(r.get("low") or 0.0), float(r.get("high") or 0.0)
    if mean <= 0 or (hi - lo) / (2 * mean) <= precision:  # nothing to estimate, or already known well enough
        return None
    days = 7.0 if artifact.get("granularity") == "week" else 1.0
    ad = ch.get("adstock") or {}
    cool, kernel = _cooldown_periods(float(ad.get("decay") or 0.0), int(ad.get("stages") or 1))
    rho = float(np.clip(health.overall.residual_lag1 or 0.0, 0.0, MAX_AUTOCORR))
    inflate = (1 + rho) / (1 - rho)
    now = (hi - lo) / (2 * mean)
    cur = float(ch.get("current_daily_spend") or 0.0)
    avg = float(ch.get("spend_total") or 0.0) / max(int(artifact.get("n_obs") or 1) * days, 1.0)
    options = [(s, s * cur) for s in CHANGES] if cur > 0 else [(1.0, avg)]
    best: tuple[float, dict[str, Any]] | None = None
    fallback: dict[str, Any] | None = None
    for share, delta in options:
        if delta == 0:
            continue
        per_day, sd_day, r_lift = _teaching(ch, cur, delta, cur if cur > 0 else avg, now)
        for weeks in range(MIN_WEEKS, max(max_weeks, MIN_WEEKS) + 1):
            test_p = max(int(round(7 * weeks / days)), 1)
            window = test_p + cool
            scale = 7 * weeks * _captured(kernel, test_p, window)
            lift, var_lift = per_day * scale, (sd_day * scale) ** 2
            se = float(sigma * np.sqrt(window * inflate))
            se_seen = se * SE_INFLATION  # what the fit's reported interval will make of it
            taught = r_lift**2 * var_lift / (var_lift + se_seen**2) if var_lift > 0 else 0.0
            after = float(now * np.sqrt(max(1.0 - taught, 0.0)))
            d = dict(share=share, delta=delta, weeks=weeks, lift=lift, se=se, after=after)
            if after <= precision:
                cost = abs(lift) - abs(delta) * 7 * weeks if delta < 0 else abs(delta) * 7 * weeks - abs(lift)
                if best is None or cost < best[0]:
                    best = (cost, d)
                break
            if weeks == max_weeks and (fallback is None or after < fallback["after"]):
                fallback = d
    chosen = best[1] if best is not None else fallback
    if chosen is None:
        return None
    reached = best is not None
    after = chosen["after"]
    iv_after = [max(mean * (1 - after), 0.0), mean * (1 + after)]
    share_spend = float(h.spend_share or 0.0)
    why = next((f.detail for f in h.findings if f.detail and f.kind != "wide_interval"), None)
    reason = (f"{channel} takes {share_spend:.0%} of spend and its ROAS is known only to within {lo:.2f}–{hi:.2f} "
              f"(90%)" + (f": {why}" if why else ""))
    what = _what(channel, chosen["share"], chosen["delta"], chosen["weeks"])
    readout = (f"read the result {_plural(cool * int(days), 'day')} after it ends" if cool
               else "read the result when it ends")
    if reached:
        action = (f"{what}, {readout}: its ROAS interval should narrow from {lo:.2f}–{hi:.2f} to about "
                  f"{iv_after[0]:.2f}–{iv_after[1]:.2f}")
    else:
        action = (f"{what}, {readout}: even that narrows its ROAS interval only to about {iv_after[0]:.2f}–"
                  f"{iv_after[1]:.2f} (±{after:.0%}), since the revenue noise is large against this channel's "
                  f"effect; a geo test with control regions measures it more precisely")
    return TestDesign(
        channel=channel, status=h.status, current_daily_spend=cur, spend_change_per_day=float(chosen["delta"]),
        change_share=float(chosen["share"]), weeks=int(chosen["weeks"]), cooldown_days=int(cool * days),
        expected_lift=float(chosen["lift"]), expected_lift_se=float(chosen["se"]), roas=mean,
        roas_interval=[lo, hi], roas_interval_after=[float(v) for v in iv_after], precision_after=float(after),
        reaches_target=reached, hold=h.status == "unidentified", spend_share=share_spend, reason=reason,
        action=action)


def recommend_tests(artifact: Mapping[str, Any], fixed: Iterable[str] | None = None, *,
                    precision: float = TARGET_PRECISION, max_weeks: int = MAX_WEEKS,
                    min_share: float = TEST_MIN_SPEND_SHARE) -> list[TestDesign]:
    """Lift tests for every weak or unidentified channel with at least ``min_share`` of spend whose ROAS is not
    already known to ±``precision`` (fixed fees excluded: their spend buys no response), largest share first."""
    health = health_of(artifact)
    if not health.available:
        return []
    fixed_set = set(fixed) if fixed is not None else {n for n, c in (artifact.get("channels") or {}).items()
                                                      if c.get("fixed_cost")}
    out = []
    for name, h in health.channels.items():
        if name in fixed_set or h.status not in TESTABLE or (h.spend_share or 0.0) < min_share:
            continue
        t = design_test(artifact, name, health, precision=precision, max_weeks=max_weeks)
        if t is not None:
            out.append(t)
    return sorted(out, key=lambda t: -t.spend_share)
