"""The MMM on the TechStyle demo world: true ROAS inside the 90% intervals, big channels and Google's optimum close."""

from __future__ import annotations

import importlib
from datetime import date

import pytest

techstyle = importlib.import_module("core.demo.techstyle")

from core.mmm.design import to_wide  # noqa: E402
from core.mmm.fit import fit_mmm  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    data = techstyle.generate_techstyle(seed=42, end=date(2026, 11, 25))
    df = to_wide(data.marketing, data.kpis)
    channels = [c for c in df.columns if c not in ("date", "revenue")]
    art = fit_mmm(df, spend_cols=channels, external_factors=data.external_factors, n_boot=60, seed=0)
    return data.truth, art


def test_every_true_roas_inside_interval(fitted):
    truth, art = fitted
    for name, ch in art["channels"].items():
        true = truth["channels"][name]["roas"]
        assert ch["roas"]["low"] <= true <= ch["roas"]["high"], f"{name}: {true:.2f} outside {ch['roas']}"


def test_google_optimal_daily_spend_close(fitted):
    truth, art = fitted
    est = art["channels"]["Google Ads"]["optimal_daily_spend"]
    assert est == pytest.approx(truth["channels"]["Google Ads"]["optimal_daily_spend"], rel=0.15)
    g = art["channels"]["Google Ads"]
    assert g["current_daily_spend"] > est  # past the optimum: the model sees the diminishing returns
    assert g["opportunity_per_day"] > 0
    assert art["channels"]["Meta Ads"]["efficiency_change"]["ratio"] < 1  # the privacy change is seen


def test_largest_contributors_point_estimates(fitted):
    """The three largest channels (by true incremental revenue) are within 20% of the truth; channels the data
    cannot pin down say so."""
    truth, art = fitted
    top = sorted(truth["channels"], key=lambda c: -truth["channels"][c]["incremental_revenue_total"])[:3]
    for c in top:
        assert art["channels"][c]["roas"]["mean"] == pytest.approx(truth["channels"][c]["roas"], rel=0.2), c
    for c, ch in art["channels"].items():
        err = abs(ch["roas"]["mean"] / truth["channels"][c]["roas"] - 1)
        if err > 0.2:  # a poorly identified channel must carry a wide interval and a warning
            assert ch["roas"]["high"] / ch["roas"]["low"] > 2.0, c
            assert any(w.startswith(c) for w in art["warnings"]), c


def test_fit_quality_and_platform_roas(fitted):
    _, art = fitted
    assert art["fit"]["r2"] > 0.95 and art["fit"]["mape_holdout"] < 0.12
    assert art["media_demand_elasticity"] > 0  # the world's media effects scale with seasonal demand
    assert all(ch["platform_roas"] is not None for ch in art["channels"].values())
