"""The MMM's structures against planted truth: delayed carry-over, a multiplicative (log) KPI chosen by the data,
holidays from the calendar when no events are given, and efficiency breaks that nothing names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.mmm.calendar import calendar_events
from core.mmm.fit import fit_mmm
from tests.core.mmm.structured_worlds import Channel, make


def _errs(art: dict, truth: dict[str, float]) -> dict[str, float]:
    return {c: art["channels"][c]["roas"]["mean"] / t - 1 for c, t in truth.items()}


@pytest.mark.parametrize("freq,peak", [("W", 2), ("D", 12)])
def test_delayed_peak_carryover_is_found_and_recovers_roas(freq: str, peak: int) -> None:
    """A channel whose effect peaks weeks after the spend (video, TV) gets a delayed carry-over and its ROAS; the
    same data fitted with geometric carry-over only is further off."""
    periods = 156 if freq == "W" else 730
    w = make([Channel("Video", 4000, 3.0, half=1.5, peak=peak), Channel("Search", 3000, 2.5, half=1.0, decay=0.2)],
             freq=freq, periods=periods, seed=3, noise=0.02)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=30, country=None, kpi_form="additive")
    ad = art["channels"]["Video"]["adstock"]
    assert ad["type"] == "delayed" and ad["stages"] > 1
    assert 0.4 * peak <= ad["peak_lag"] <= 2.0 * peak, ad
    err = _errs(art, w.truth)
    assert abs(err["Video"]) < 0.25, err
    import core.mmm.select as select

    saved = select.STAGE_CHOICES
    select.STAGE_CHOICES = ()
    try:
        geo = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None, kpi_form="additive")
    finally:
        select.STAGE_CHOICES = saved
    assert geo["channels"]["Video"]["adstock"]["type"] == "geometric"
    assert abs(_errs(geo, w.truth)["Video"]) > abs(err["Video"])


@pytest.mark.parametrize("freq,seed", [("D", 1), ("W", 2)])
def test_multiplicative_kpi_is_chosen_by_the_data_and_recovers_roas(freq: str, seed: int) -> None:
    """Where media effects scale with the whole business (season and growth), rolling-origin validation picks the
    log form and the removal ROAS is recovered; an additive world keeps the additive form."""
    chans = [Channel("Social", 5000, 3.0, half=1.2), Channel("Search", 4000, 2.0, half=0.8, flighted=False)]
    w = make(chans, freq=freq, periods=730 if freq == "D" else 170, form="log", seed=seed, season=0.45)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=30, country=None)
    assert art["kpi_form"] == "log", art["form_selection"]
    cv = art["form_selection"]["rolling_origin_mape"]
    assert cv["log"] < cv["additive"]
    err = _errs(art, w.truth)
    assert max(abs(e) for e in err.values()) < 0.3, err
    for c, t in w.truth.items():
        r = art["channels"][c]["roas"]
        assert r["low"] <= t <= r["high"], (c, t, r)


def test_additive_world_keeps_the_additive_form() -> None:
    w = make([Channel("Social", 5000, 3.0, half=1.2), Channel("Search", 4000, 2.0, half=0.8)], periods=730,
             form="additive", seed=5, season=0.45)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None)
    assert art["kpi_form"] == "additive", art["form_selection"]


def test_holidays_from_the_calendar_when_no_events_are_given() -> None:
    """No events table: the country's holidays enter the baseline, so spikes on Black Friday are not credited to
    whatever channel spent then."""
    w = make([Channel("Social", 5000, 2.0, half=1.0), Channel("Search", 4000, 2.5, half=1.0)], periods=730, seed=7,
             holidays={"2023-11-24": 2.5, "2024-11-29": 2.5, "2023-12-25": -0.5, "2024-12-25": -0.5,
                       "2023-07-04": 0.4, "2024-07-04": 0.4}, noise=0.02)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country="US")
    assert "factor:Black Friday" in art["baseline_terms"] and "factor:Christmas Day" in art["baseline_terms"]
    assert art["events"].startswith("calendar")
    none = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None)
    assert not any(t.startswith("factor:") for t in none["baseline_terms"])
    res = lambda a: np.abs(np.array(a["decomposition"]["actual"]) - np.array(a["decomposition"]["fitted"]))  # noqa
    bf = np.flatnonzero(pd.to_datetime(art["decomposition"]["dates"]).isin(pd.to_datetime(["2023-11-24",
                                                                                             "2024-11-29"])))
    assert res(art)[bf].max() < 0.25 * res(none)[bf].min()
    e_cal, e_none = _errs(art, w.truth), _errs(none, w.truth)
    assert np.mean(np.abs(list(e_cal.values()))) <= np.mean(np.abs(list(e_none.values()))) + 0.02


def test_unknown_country_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown country"):
        calendar_events(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31"), "XX")


@pytest.mark.parametrize("freq,ratio", [("D", 0.6), ("W", 1.5)])
def test_unnamed_efficiency_break_is_reported_with_date_and_size(freq: str, ratio: float) -> None:
    periods = 900 if freq == "D" else 200
    w = make([Channel("Meta", 5000, 3.0, half=1.5, break_at=0.55, break_ratio=ratio),
              Channel("Search", 4000, 2.0, half=1.0)], freq=freq, periods=periods, seed=11, noise=0.02)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None)
    found = {b["channel"]: b for b in art["efficiency_breaks"]}
    assert "Meta" in found and "Search" not in found, art["efficiency_breaks"]
    true_date = w.data["date"].iloc[int(0.55 * periods)]
    assert abs((pd.Timestamp(found["Meta"]["date"]) - true_date).days) <= 42
    assert found["Meta"]["ratio"] == pytest.approx(ratio, rel=0.25)
    assert any("Meta: its efficiency seems to have changed" in n for n in art["notes"])


def test_no_break_is_reported_where_there_is_none() -> None:
    for seed in (21, 22):
        w = make([Channel("Meta", 5000, 3.0, half=1.5), Channel("Search", 4000, 2.0, half=1.0)], periods=730,
                 seed=seed, noise=0.04)
        art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None)
        assert art["efficiency_breaks"] == [], art["efficiency_breaks"]


def test_weekly_holidays_from_the_calendar() -> None:
    """Weekly data: each holiday lands in its week; Black Friday week's spike is baseline, not media."""
    hol = {"2023-11-24": 2.5, "2024-11-29": 2.5, "2025-11-28": 2.5, "2023-12-25": -0.6, "2024-12-25": -0.6}
    w = make([Channel("Social", 5000, 2.0, half=1.0), Channel("Search", 4000, 2.5, half=1.0)], freq="W",
             periods=156, seed=8, holidays=hol, noise=0.02)
    art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country="US", kpi_form="additive")
    none = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None, kpi_form="additive")
    assert "factor:Black Friday" in art["baseline_terms"]
    assert art["fit"]["mape"] < 0.7 * none["fit"]["mape"]
    e_cal, e_none = _errs(art, w.truth), _errs(none, w.truth)
    assert max(abs(v) for v in e_cal.values()) < 0.25, e_cal
    assert np.mean(np.abs(list(e_cal.values()))) <= np.mean(np.abs(list(e_none.values()))) + 0.02


def test_intervals_hold_the_truth_across_structures() -> None:
    """Across worlds of several shapes (forms, carry-overs, granularities) the 90% ROAS intervals hold the truth
    for at least 7 of 8 channels, and are not uselessly wide where the data see the channel (flighted spend)."""
    worlds = [
        make([Channel("A", 4000, 3.0, half=1.2), Channel("B", 3000, 2.0, half=0.8, decay=0.2)], seed=31),
        make([Channel("A", 4000, 3.0, half=1.2, peak=2), Channel("B", 3000, 2.0)], freq="W", periods=156, seed=32),
        make([Channel("A", 5000, 2.5, half=1.0), Channel("B", 3000, 3.0, half=1.5)], form="log", seed=33,
             season=0.4),
        make([Channel("A", 5000, 2.5, half=1.0), Channel("B", 3000, 3.0, half=1.5, flighted=False)], freq="W",
             periods=170, form="log", seed=34, season=0.4, noise=0.05),
    ]
    covered, widths = 0, []
    for w in worlds:
        art = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=60, country=None)
        for c, t in w.truth.items():
            r = art["channels"][c]["roas"]
            covered += int(r["low"] <= t <= r["high"])
            widths.append((r["high"] - r["low"]) / t)
    assert covered >= 7, covered
    assert np.median(widths) < 1.5, widths


def _lift_test(w, channel: str, start: str, days: int, change: float, rel_se: float = 0.1,
              cooldown: int = 0) -> pd.DataFrame:
    """The true lift of changing ``channel``'s daily spend by ``change`` for ``days`` days, read out ``cooldown``
    days after the change ends (so carry-over counts), with a standard error of ``rel_se`` of it."""
    spend = {c: w.data[c].to_numpy(float) for c in w.spend_cols}
    i = int(np.searchsorted(w.data["date"].values, np.datetime64(start)))
    alt = dict(spend)
    alt[channel] = spend[channel].copy()
    alt[channel][i:i + days] += change
    lift = float((w.response(alt) - w.response(spend))[i:i + days + cooldown].sum())
    end = pd.Timestamp(start) + pd.Timedelta(days=days - 1)
    return pd.DataFrame({"channel": [channel], "start": [start], "end": [str(end.date())],
                         "measured_until": [str((end + pd.Timedelta(days=cooldown)).date())],
                         "spend_change": [change], "lift": [lift], "se": [rel_se * abs(lift)]})


def test_a_lift_test_pulls_an_unidentified_channel_toward_the_truth() -> None:
    """An always-on channel whose spend barely moves is confounded with the baseline (wide interval, point off).
    One four-week holdout (its spend switched off) calibrates it: ROAS within 10% and a narrow interval around the
    truth. A test that raises its spend by half measures its marginal return, not its average: it still moves the
    ROAS toward the truth and narrows the interval."""
    w = make([Channel("Brand", 6000, 2.0, half=1.5, flighted=False, vol=0.04, decay=0.5),
              Channel("Search", 4000, 2.5, half=1.0)], periods=730, seed=41, noise=0.05)
    t = w.truth["Brand"]
    base = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=60, country=None, kpi_form="additive")
    r0 = base["channels"]["Brand"]["roas"]
    assert abs(r0["mean"] / t - 1) > 0.3 and r0["high"] - r0["low"] > 2 * t  # the data alone cannot tell
    for change, within, narrower, cooldown in ((-6000.0, 0.1, 0.3, 0), (-6000.0, 0.1, 0.3, 21),
                                               (3000.0, 0.4, 0.8, 0)):
        tests = _lift_test(w, "Brand", "2024-03-04", 28, change, cooldown=cooldown)
        cal = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=60, country=None, kpi_form="additive",
                      lift_tests=tests)
        r1 = cal["channels"]["Brand"]["roas"]
        assert abs(r1["mean"] / t - 1) < min(within, abs(r0["mean"] / t - 1)), (change, r0, r1, t)
        assert r1["low"] <= t <= r1["high"], (change, r1, t)
        assert r1["high"] - r1["low"] < narrower * (r0["high"] - r0["low"]), (change, r0, r1)
        row = cal["lift_tests"][0]
        assert row["channel"] == "Brand" and row["predicted"] == pytest.approx(row["lift"], rel=0.1)
        assert row["predicted_interval"][0] <= row["lift"] <= row["predicted_interval"][1]
        if cooldown:  # read out three weeks after the holdout: the carry-over is in the measured lift too
            assert row["lift"] < _lift_test(w, "Brand", "2024-03-04", 28, change)["lift"][0] < 0
    assert any("a lift test (2024-03-04 to 2024-03-31)" in n for n in cal["notes"])


@pytest.mark.parametrize("bad,match", [
    ({"channel": "TV"}, "column channel: 'TV' is not a channel"),
    ({"se": 0.0}, "column se: the standard error must be > 0"),
    ({"start": "2031-01-01", "end": "2031-02-01"}, "outside the data"),
    ({"end": "2023-01-01", "start": "2023-02-01"}, "is before start"),
    ({"spend_change": 0.0}, "a test must change the spend"),
    ({"measured_until": "2023-03-10"}, "column measured_until: 2023-03-10 is before the end"),
])
def test_bad_lift_tests_are_refused_with_row_and_column(bad: dict, match: str) -> None:
    w = make([Channel("Brand", 6000, 2.0), Channel("Search", 4000, 2.5)], periods=400, seed=3)
    row = {"channel": "Brand", "start": "2023-03-01", "end": "2023-03-28", "spend_change": 1000.0, "lift": 5e4,
           "se": 5e3, **bad}
    with pytest.raises(ValueError, match=f"lift_tests row 1.*{match}"):
        fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=0, country=None, lift_tests=pd.DataFrame([row]))
