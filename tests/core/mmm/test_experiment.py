"""Test instead of move, against planted truth: the lift-test design follows the model's noise and the wanted
precision; the plan holds an unidentified channel for its test; once the test is measured the channel is
identified and the plan moves it. Each move's probability of gaining revenue on known draws."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from core.demo.mmm_synth import SynthWorld
from core.mmm.adstock import geometric_adstock
from core.mmm.experiment import MAX_WEEKS, MIN_WEEKS, design_test, recommend_tests
from core.mmm.health import STATUSES, health_of
from core.mmm.moves import move_probabilities
from core.mmm.optimize import ChannelCurve
from core.mmm.plan import make_plan
from core.mmm.saturation import hill
from tests.core.mmm.test_health import collinear_world, fit
from tests.core.mmm.test_plan import WORLD_1, make_artifact


@pytest.fixture(scope="module", params=[("D", 0), ("W", 2)], ids=["daily", "weekly"])
def collinear(request) -> tuple[SynthWorld, dict]:
    w = collinear_world(*request.param)
    return w, fit(w)


def _with_noise(health, factor: float):
    h = copy.deepcopy(health)
    h.overall.residual_sd *= factor
    return h


def test_weeks_fall_with_less_noise_and_rise_with_tighter_precision(collinear) -> None:
    w, art = collinear
    health = health_of(art)
    days = 7 if art["granularity"] == "week" else 1
    fewer = more = 0
    for name in ("Meta Ads", "TikTok"):
        base = design_test(art, name, health)
        assert base is not None and MIN_WEEKS <= base.weeks <= MAX_WEEKS
        rho = float(np.clip(health.overall.residual_lag1, 0, 0.9))
        periods = 7 * base.weeks // days + base.cooldown_days // days
        assert base.expected_lift_se == pytest.approx(
            health.overall.residual_sd * np.sqrt(periods * (1 + rho) / (1 - rho)))
        assert base.expected_lift < 0 and base.spend_change_per_day < 0  # a cut or a pause: money saved, not spent
        quiet = design_test(art, name, _with_noise(health, 0.5))
        tight = design_test(art, name, health, precision=0.15)
        assert quiet.weeks <= base.weeks <= tight.weeks
        fewer += quiet.weeks < base.weeks
        more += tight.weeks > base.weeks
        lo, hi = base.roas_interval
        if base.reaches_target:
            assert base.precision_after <= 0.25 and hi - lo > base.roas_interval_after[1] - base.roas_interval_after[0]
    assert fewer >= 1 and more >= 1


def test_a_test_that_cannot_reach_the_precision_says_so(collinear) -> None:
    _, art = collinear
    t = design_test(art, "TikTok", _with_noise(health_of(art), 4.0))
    assert t.weeks == MAX_WEEKS and not t.reaches_target and t.precision_after > 0.25
    assert "even that narrows its ROAS interval only to about" in t.action
    assert f"(±{t.precision_after:.0%})" in t.action


def _true_lift(w: SynthWorld, name: str, i: int, periods: int, change: float, cooldown: int) -> float:
    """The planted response's incremental revenue of the change over test and cool-down (per-period units)."""
    days = 7.0 if w.truth["freq"] == "W" else 1.0
    t = w.truth["channels"][name]
    x = w.data[name].to_numpy(float)
    alt = x.copy()
    alt[i:i + periods] = np.maximum(alt[i:i + periods] + change * days, 0.0)

    def f(s: np.ndarray) -> np.ndarray:
        return days * t["beta"] * hill(geometric_adstock(s / days, t["adstock"]["decay"]), t["saturation"]["half"],
                                       t["saturation"]["shape"])

    return float((f(alt) - f(x))[i:i + periods + cooldown].sum())


def test_a_measured_lift_test_identifies_the_channel_and_changes_the_plan() -> None:
    w = collinear_world("D", 0)
    art = fit(w, n_boot=80)
    before = art["health"]["channels"]["TikTok"]
    assert before["status"] == "unidentified"
    plan = make_plan(art)
    rows = {r["channel"]: r for r in plan["channels"]}
    assert rows["TikTok"]["bound"] == "lift test first" and rows["TikTok"]["optimized"] == rows["TikTok"]["current"]
    held = rows["TikTok"]["held_back"]
    assert held.startswith("TikTok is kept at") and "until a lift test" in held
    test = next(t for t in plan["tests"] if t["channel"] == "TikTok")
    assert test["hold"] and test["reaches_target"]
    free = make_plan(art, test_first=False)  # without the hold the plan would have moved it on a guess
    assert {r["channel"]: r["bound"] for r in free["channels"]}["TikTok"] != "lift test first"

    # run the recommended test at the end of the data and measure it with the standard error the design expects
    n, periods, cool = len(w.data), 7 * test["weeks"], test["cooldown_days"]
    i = n - periods - cool - 1
    start = w.data["date"].iloc[i]
    end = start + pd.Timedelta(days=periods - 1)
    lift = _true_lift(w, "TikTok", i, periods, test["spend_change_per_day"], cool)
    measured = pd.DataFrame({"channel": ["TikTok"], "start": [str(start.date())], "end": [str(end.date())],
                             "measured_until": [str((end + pd.Timedelta(days=cool)).date())],
                             "spend_change": [test["spend_change_per_day"]], "lift": [lift],
                             "se": [test["expected_lift_se"]]})
    cal = fit(w, n_boot=80, lift_tests=measured)
    after = cal["health"]["channels"]["TikTok"]
    assert after["calibrated"] and STATUSES.index(after["status"]) < STATUSES.index(before["status"]), after
    assert after["roas_rel_width"] < 0.6 * before["roas_rel_width"]
    r, truth = cal["channels"]["TikTok"]["roas"], w.truth["channels"]["TikTok"]["roas"]
    assert r["low"] <= truth <= r["high"]
    assert (r["high"] - r["low"]) / (2 * r["mean"]) < 1.5 * test["precision_after"]  # about what the design said
    replanned = make_plan(cal)
    row = {x["channel"]: x for x in replanned["channels"]}["TikTok"]
    assert row["bound"] != "lift test first" and not (row["held_back"] or "").startswith("TikTok is kept at")
    assert not [t for t in replanned["tests"] if t["channel"] == "TikTok" and t["hold"]]


def _linear(name: str, roas: np.ndarray, current: float = 1000.0) -> ChannelCurve:
    return ChannelCurve(name, current, lambda x, r=roas: r[:, None] * np.atleast_1d(x)[None, :])


def test_move_probabilities_on_known_draws() -> None:
    rng = np.random.default_rng(0)
    good, poor = rng.normal(3.0, 0.1, 4000), rng.normal(1.0, 0.1, 4000)
    curves = [_linear("Good", good), _linear("Poor", poor), _linear("Still", poor)]
    p = move_probabilities(curves, {"Good": 1100, "Poor": 900, "Still": 1000})
    assert p["Good"] > 0.99 and p["Poor"] > 0.99 and p["Still"] is None
    p = move_probabilities(curves, {"Good": 900, "Poor": 1100})
    assert p["Good"] < 0.01 and p["Poor"] < 0.01
    close = rng.normal(1.0, 1.0, 4000)  # the other channel's return minus one dollar: N(0, 1) per dollar
    p = move_probabilities([_linear("A", poor + close), _linear("B", poor)], {"A": 1100, "B": 900})
    assert p["A"] == pytest.approx(float(np.mean(close > 0)), abs=1e-9)
    # a budget that only grows: the money's alternative is the price asked of it
    assert move_probabilities(curves, {"Good": 1100})["Good"] == 1.0
    assert move_probabilities(curves, {"Good": 1100}, price=3.0)["Good"] == pytest.approx(np.mean(good > 3.0))


def test_no_tests_and_no_holds_for_a_model_without_health() -> None:
    old = make_artifact(WORLD_1)
    assert recommend_tests(old) == []
    plan = make_plan(old)
    assert plan["tests"] == [] and all(r["bound"] != "lift test first" for r in plan["channels"])
    moved = [r for r in plan["channels"] if r["arrow"] != "→"]
    assert moved and all(0.0 <= r["prob_gain"] <= 1.0 for r in moved)
