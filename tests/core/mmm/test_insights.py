"""Model insights are computed from the artifact: numbers come from the fit, never from literals."""

from __future__ import annotations

from core.mmm.insights import model_insights, money


def _channel(current: float, optimal: float, mroas: float, roas: float, platform: float | None = None) -> dict:
    return {
        "current_daily_spend": current, "optimal_daily_spend": optimal,
        "optimal_daily_spend_interval": [optimal * 0.9, optimal * 1.1], "marginal_roas": mroas,
        "opportunity_per_day": abs(current - optimal) * abs(1 - mroas), "spend_total": current * 700,
        "roas": {"mean": roas, "low": roas * 0.8, "high": roas * 1.2}, "platform_roas": platform,
        "seasonality": {"month": {str(m): (1.3 if m == 11 else 0.97) for m in range(1, 13)},
                        "weekday": {str(d): (1.2 if d in (1, 3) else 0.92) for d in range(7)}},
    }


def _artifact() -> dict:
    return {
        "target_roas": 1.0,
        "channels": {
            "Search": _channel(6200, 4800, 0.62, 2.4, platform=4.0),
            "Video": _channel(1500, 3100, 1.8, 1.9),
            "Email": {**_channel(900, 900, 1.0, 9.0), "fixed_cost": True},
        },
        "fit": {"r2": 0.93, "mape": 0.061, "mape_holdout": 0.074, "holdout_periods": 56},
    }


def test_money_formatting() -> None:
    assert money(4_700_000) == "$4.7M"
    assert money(312_000) == "$312K"
    assert money(4_800) == "$4,800"
    assert money(-15_000) == "-$15K"


def test_past_optimum_uses_the_fitted_numbers() -> None:
    texts = {i["title"]: i["text"] for i in model_insights(_artifact())}
    past = texts["Search is past its optimal point"]
    assert "0.6x" in past and "$6,200/day" in past and "$4,800/day" in past
    grow = texts["Video has room to grow"]
    assert "1.8x" in grow and "$3,100/day" in grow
    assert not any("Email is past" in t or "Email has room" in t for t in texts)  # fixed cost: no spend advice


def test_changing_the_fit_changes_the_sentence() -> None:
    art = _artifact()
    art["channels"]["Search"].update(current_daily_spend=9000, marginal_roas=0.35)
    text = next(i["text"] for i in model_insights(art) if i["channel"] == "Search" and i["kind"] == "warning")
    assert "0.3x" in text or "0.4x" in text
    assert "$9,000/day" in text


def test_over_reporting_and_seasonality_and_trust() -> None:
    ins = model_insights(_artifact())
    titles = [i["title"] for i in ins]
    assert "Search over-reports its impact" in titles
    assert "Highest incremental return" in titles and any("Email returns the most" in i["text"] for i in ins)
    assert any(i["title"] == "When Search performs best" and "November" in i["text"] for i in ins)
    assert any("Tuesday and Thursday" in i["text"] for i in ins)
    trust = next(i for i in ins if i["title"] == "How much to trust the model")
    assert "93%" in trust["text"] and "7.4%" in trust["text"]


def test_reallocation_headline_comes_first() -> None:
    plan = {"projection": {"lift_per_year": 250_000.0, "lift_per_year_low": 120_000.0, "lift_per_year_high": 380_000.0},
            "channels": [{"channel": "Search", "change": -1400.0}, {"channel": "Video", "change": 1400.0}]}
    first = model_insights(_artifact(), plan)[0]
    assert first["title"] == "Same budget, more revenue"
    assert "$250K/year" in first["text"] and "$120K" in first["text"] and "Search -$1,400/day" in first["text"]


def test_no_reallocation_insight_without_lift() -> None:
    plan = {"projection": {"lift_per_year": -10.0, "lift_per_year_low": -50.0, "lift_per_year_high": 20.0},
            "channels": []}
    assert all(i["title"] != "Same budget, more revenue" for i in model_insights(_artifact(), plan))


def test_breaks_and_delayed_carryover_become_findings() -> None:
    from core.mmm.fit import fit_mmm
    from tests.core.mmm.structured_worlds import Channel, make

    w = make([Channel("Video", 4000, 3.0, half=1.5, peak=2), Channel("Meta", 5000, 3.0, half=1.5, break_at=0.55,
                                                                      break_ratio=0.6)],
             freq="W", periods=200, seed=11, noise=0.02)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None, kpi_form="additive")
    titles = {i["title"]: i for i in model_insights(art)}
    brk = [i for t, i in titles.items() if t.startswith("Meta changed around")]
    assert len(brk) == 1 and "less revenue per dollar" in brk[0]["text"] and brk[0]["kind"] == "warning"
    found = art["efficiency_breaks"][0]
    assert f"{abs(found['ratio'] - 1):.0%}" in brk[0]["text"]
    assert "Video works with a delay" in titles
    assert f"{art['channels']['Video']['adstock']['peak_lag']:.0f} weeks" in titles["Video works with a delay"]["text"]
