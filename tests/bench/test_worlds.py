"""Benchmark worlds (bench/worlds): determinism, truth through expected_kpi, realism and structural coverage."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.worlds import QUICK_SEEDS, World, all_worlds, make_world, structure_kinds  # noqa: E402

N = 120


@pytest.fixture(scope="module")
def timed_worlds() -> tuple[list[World], float]:
    t = time.perf_counter()
    ws = all_worlds(N)
    return ws, time.perf_counter() - t


@pytest.fixture(scope="module")
def worlds(timed_worlds: tuple[list[World], float]) -> list[World]:
    return timed_worlds[0]


def _x(w: World) -> np.ndarray:
    return w.data[w.spend_cols].to_numpy(float)


def _media_response(w: World, y1: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """The media term of one channel when every other channel is off, read back through expected_kpi."""
    form = w.structure["kpi_form"]
    if form == "additive":
        return y1 - y0
    if form == "multiplicative":
        return y1 / y0 - 1.0
    return np.log(y1 / y0)


def _impulse_effect(w: World, k: int, t: int, stop: int) -> float:
    """Summed media response over [t, stop) to one period of channel k's mean spend at t, all else off."""
    x0 = np.zeros_like(_x(w))
    xi = x0.copy()
    xi[t, k] = _x(w)[:, k].mean()
    return float(_media_response(w, w.expected_kpi(xi), w.expected_kpi(x0))[t:stop].sum())


def test_generation_is_fast_and_seeded(timed_worlds: tuple[list[World], float]) -> None:
    ws, secs = timed_worlds
    assert secs < 60.0
    assert [w.seed for w in ws] == list(range(N))
    assert [w.seed for w in all_worlds(3, start_seed=50)] == [50, 51, 52]


@pytest.mark.parametrize("seed", [0, 1, 7, 33])
def test_same_seed_same_world(seed: int) -> None:
    a, b = make_world(seed), make_world(seed)
    pd.testing.assert_frame_equal(a.data, b.data)
    if a.external_factors is None:
        assert b.external_factors is None
    else:
        pd.testing.assert_frame_equal(a.external_factors, b.external_factors)
    assert a.structure == b.structure and a.truth == b.truth and a.name == b.name
    np.testing.assert_array_equal(a.expected_kpi(_x(a)), b.expected_kpi(_x(b)))
    assert not a.data.equals(make_world(seed + 1).data)


def test_interface_and_json(worlds: list[World]) -> None:
    for w in worlds:
        assert w.granularity in ("day", "week") and w.country in ("US", "GB", "DE", "FR", "CA", "AU")
        assert w.name.startswith(f"w{w.seed:03d} ")
        assert list(w.data.columns[:2]) == ["date", "revenue"]
        assert set(w.spend_cols) | set(w.control_cols) <= set(w.data.columns)
        assert set(w.data.columns) == {"date", "revenue", *w.spend_cols, *w.control_cols}
        assert set(w.truth["channels"]) == set(w.spend_cols)
        for t in w.truth["channels"].values():
            assert {"roas", "contribution", "spend_total", "share_of_spend"} <= set(t)
        assert isinstance(w.truth["notes"], list)
        json.dumps(w.structure)
        json.dumps(w.truth)
        assert pd.api.types.is_datetime64_any_dtype(w.data["date"])


def test_dates_and_history(worlds: list[World]) -> None:
    ends = set()
    for w in worlds:
        d = pd.DatetimeIndex(w.data["date"])
        step = np.diff(d.values).astype("timedelta64[D]").astype(int)
        if w.granularity == "week":
            assert (d.day_of_week == 0).all() and (step == 7).all() and len(d) >= 104
            assert len(d) * 7 / 365.25 <= 4.01
        else:
            assert (step == 1).all()
            assert 1.5 - 1e-3 <= len(d) / 365.25 <= 4.01
        ends.add(d[-1].year)
    assert len(ends) >= 5


def test_expected_kpi_plus_noise_is_revenue(worlds: list[World]) -> None:
    lag1 = {True: [], False: []}
    for w in worlds:
        nz = w.structure["noise"]
        assert 0.03 <= nz["sigma"] <= 0.15
        e = w.expected_kpi(_x(w))
        y = w.data["revenue"].to_numpy()
        keep = y > 0.05 * e * 1.0001
        r = y / e - 1.0 if nz["kind"] == "multiplicative" else (y - e) / e.mean()
        r = r[keep]
        assert 0.5 * nz["sigma"] < r.std() < 1.6 * nz["sigma"], (w.name, r.std(), nz)
        assert abs(r.mean()) < 0.6 * nz["sigma"], w.name
        lag1[nz["ar1"] > 0].append(np.corrcoef(r[:-1], r[1:])[0, 1])
        # the wrong spend does not reproduce revenue as well
        e0 = w.expected_kpi(np.zeros_like(_x(w)))
        r0 = y / e0 - 1.0 if nz["kind"] == "multiplicative" else (y - e0) / e0.mean()
        assert np.abs(r0[keep]).mean() > np.abs(r).mean()
    assert np.median(lag1[True]) > 0.3 and np.median(np.abs(lag1[False])) < 0.1


def test_truth_is_removal_counterfactual(worlds: list[World]) -> None:
    for w in worlds:
        x = _x(w)
        full = w.expected_kpi(x).sum()
        tot = x.sum(axis=0)
        for j, c in enumerate(w.spend_cols):
            x0 = x.copy()
            x0[:, j] = 0.0
            contrib = full - w.expected_kpi(x0).sum()
            t = w.truth["channels"][c]
            assert t["contribution"] == pytest.approx(contrib, rel=1e-9, abs=1e-6)
            assert t["roas"] == pytest.approx(contrib / tot[j], rel=1e-9)
            assert t["spend_total"] == pytest.approx(tot[j], rel=1e-12)
            assert t["share_of_spend"] == pytest.approx(tot[j] / tot.sum(), rel=1e-12)
            assert t["roas"] > 0


def test_realistic_values(worlds: list[World]) -> None:
    per_day = []
    for w in worlds:
        x = _x(w)
        y = w.data["revenue"].to_numpy()
        assert np.isfinite(y).all() and (y > 0).all()
        assert np.isfinite(x).all() and (x >= 0).all()
        assert not w.data.isna().any().any()
        assert (x.sum(axis=0) > 0).all()
        e = w.expected_kpi(x)
        assert (e > 0).all() and (w.expected_kpi(np.zeros_like(x)) > 0).all()
        per_day.extend(x.mean(axis=0) / (7.0 if w.granularity == "week" else 1.0))
        assert 0.05 <= w.truth["media_share"] <= 0.40
    assert 1000 <= np.median(per_day) <= 20000 and min(per_day) > 50


def test_expected_kpi_vectorised(worlds: list[World]) -> None:
    w = worlds[0]
    x = _x(w)
    rng = np.random.default_rng(0)
    stack = x[None] * rng.uniform(0.0, 2.0, (5, 1, len(w.spend_cols)))
    batch = w.expected_kpi(stack)
    for k in range(5):
        np.testing.assert_allclose(batch[k], w.expected_kpi(stack[k]), rtol=1e-12)
    with pytest.raises(ValueError):
        w.expected_kpi(x[:-1])
    t = time.perf_counter()
    for _ in range(200):
        w.expected_kpi(x)
    assert (time.perf_counter() - t) / 200 < 0.01


def test_coverage_of_structure(worlds: list[World]) -> None:
    n = len(worlds)
    gran = Counter(w.structure["granularity"] for w in worlds)
    assert 0.4 * n <= gran["day"] <= 0.6 * n and gran["day"] + gran["week"] == n
    forms = Counter(w.structure["kpi_form"] for w in worlds)
    assert set(forms) == {"additive", "multiplicative", "loglinear"} and min(forms.values()) >= 0.25 * n
    modes = Counter(w.structure["holidays"]["mode"] for w in worlds)
    assert set(modes) == {"table", "flag", "none"} and min(modes.values()) >= 0.25 * n
    countries = Counter(w.country for w in worlds)
    assert set(countries) == {"US", "GB", "DE", "FR", "CA", "AU"} and countries.most_common(1)[0][0] == "US"
    n_ch = Counter(len(w.spend_cols) for w in worlds)
    assert set(n_ch) == set(range(2, 9))
    chans = [ch for w in worlds for ch in w.structure["channels"].values()]
    assert all(len(set(w.spend_cols)) == len(w.spend_cols) for w in worlds)
    m = len(chans)
    for key, kinds, share in (("adstock", ("geometric", "weibull", "delayed"), 0.1),
                              ("saturation", ("hill", "exponential", "logistic"), 0.1),
                              ("pattern", ("always_on", "flighted", "ramping", "seasonal", "demand"), 0.05)):
        cnt = Counter(ch[key]["kind"] for ch in chans)
        assert set(cnt) == set(kinds) and min(cnt.values()) >= share * m, (key, cnt)
    geo = [ch["adstock"]["decay"] for ch in chans if ch["adstock"]["kind"] == "geometric"]
    assert min(geo) < 0.1 and max(geo) > 0.6
    ratios = [ch["saturation"]["half_sat_ratio"] for ch in chans]
    assert 0.3 <= min(ratios) < 0.5 and 3.0 < max(ratios) <= 4.0
    shapes = [ch["saturation"]["shape"] for ch in chans if ch["saturation"]["kind"] == "hill"]
    assert 0.7 <= min(shapes) < 1.0 and 2.5 < max(shapes) <= 3.0
    assert any(ch["order"] == "saturation_first" for ch in chans)
    assert sum(bool(w.structure["correlated_pair"]) for w in worlds) >= 0.1 * n
    assert sum(bool(w.structure["tiny_channel"]) for w in worlds) >= 5
    assert 0.12 * n <= sum(bool(w.structure["break"]) for w in worlds) <= 0.3 * n
    assert sum(bool(w.structure["unobserved"]) for w in worlds) >= 3
    assert set(Counter(len(w.structure["controls"]) for w in worlds)) == {0, 1, 2, 3}
    assert sum(w.structure["holidays"]["bfcm"] for w in worlds) >= 10
    assert sum(w.structure["holidays"]["n_promotions"] > 0 for w in worlds) >= 10
    assert sum(w.structure["holidays"]["n_with_window"] > 0 for w in worlds) >= 10
    noise = Counter(w.structure["noise"]["kind"] for w in worlds)
    assert min(noise.values()) >= 0.25 * n and sum(w.structure["noise"]["ar1"] > 0 for w in worlds) >= 0.15 * n
    seasons = Counter(w.structure["baseline"]["season"]["kind"] for w in worlds)
    assert {"q4_peak", "summer", "fourier", "flat"} <= set(seasons)
    assert sum(w.structure["baseline"]["trend"]["kind"] == "slope_change" for w in worlds) >= 10
    assert all(w.structure["baseline"]["weekday"] for w in worlds if w.granularity == "day")
    roas = [t["roas"] for w in worlds for t in w.truth["channels"].values()]
    assert min(roas) < 0.5 and max(roas) > 5.0
    spread = [max(r) / min(r) for w in worlds if len(w.spend_cols) >= 3
              for r in [[t["roas"] for t in w.truth["channels"].values()]]]
    assert np.median(spread) > 3.0
    shares = [w.truth["media_share"] for w in worlds]
    assert min(shares) < 0.1 and max(shares) > 0.3


def test_spend_patterns_in_the_data(worlds: list[World]) -> None:
    for w in worlds:
        x = _x(w)
        for j, c in enumerate(w.spend_cols):
            p = w.structure["channels"][c]["pattern"]
            if p["kind"] == "flighted":
                assert 0.2 - 1e-9 <= (x[:, j] == 0).mean() <= 0.6 + 1e-9, (w.name, c)
            elif p["kind"] == "ramping":
                on = x[p["launch_period"]:, j]
                q = max(len(on) // 6, 1)
                assert on[-q:].mean() > 2.0 * on[:q].mean(), (w.name, c)
                assert (x[:p["launch_period"], j] == 0).all()
            elif p["kind"] == "always_on":
                assert (x[:, j] > 0).all()
        pair = w.structure["correlated_pair"]
        if pair:
            a, b = (w.spend_cols.index(c) for c in pair["channels"])
            assert 0.55 <= np.corrcoef(x[:, a], x[:, b])[0, 1] <= 0.92, w.name
        tiny = w.structure["tiny_channel"]
        if tiny:
            share = x[:, w.spend_cols.index(tiny)].sum() / x.sum()
            assert 0.009 <= share <= 0.021
        for name, ctrl in w.structure["controls"].items():
            assert name in w.data.columns
            if name == "price":
                assert ctrl["elasticity"] < 0
    corr = [abs(np.corrcoef(w.data[k], w.data[s])[0, 1]) for w in worlds for k, v in w.structure["controls"].items()
            if v["correlated_with"] for s in [v["correlated_with"]]]
    assert len(corr) >= 10 and np.median(corr) > 0.25


def test_holiday_modes(worlds: list[World]) -> None:
    for w in worlds:
        mode = w.structure["holidays"]["mode"]
        assert w.structure["holidays"]["n_holiday_names"] > 0
        if mode == "table":
            ef = w.external_factors
            assert ef is not None and len(ef) > 0
            assert list(ef.columns) == ["date", "factor_type", "factor_name", "impact_multiplier", "description"]
            assert set(ef["factor_type"]) <= {"holiday", "event", "promotion"}
            assert ef["date"].isin(w.data["date"]).all()
            assert "is_holiday" not in w.data.columns
        else:
            assert w.external_factors is None
            assert ("is_holiday" in w.control_cols) == (mode == "flag")
        if mode == "flag":
            flag = w.data["is_holiday"]
            assert set(flag.unique()) <= {0, 1} and flag.sum() > 0


def test_holidays_move_the_kpi(worlds: list[World]) -> None:
    """Holidays are in the KPI (also when not given): the zero-spend KPI jumps on flagged periods."""
    for w in worlds:
        if w.structure["holidays"]["mode"] != "flag" or w.granularity != "day":
            continue
        log_e0 = np.log(w.expected_kpi(np.zeros_like(_x(w))))
        jump = np.abs(log_e0[7:-7] - 0.5 * (log_e0[:-14] + log_e0[14:]))  # against the same weekday a week away
        flag = w.data["is_holiday"].to_numpy()[7:-7] == 1
        assert jump[flag].mean() > 3 * np.median(jump[~flag]), w.name


def test_delayed_peak_kernels_peak_after_lag_zero(worlds: list[World]) -> None:
    seen = Counter()
    for w in worlds:
        x0 = np.zeros_like(_x(w))
        y0 = w.expected_kpi(x0)
        t0 = 3
        for j, c in enumerate(w.spend_cols):
            info = w.structure["channels"][c]
            xi = x0.copy()
            xi[t0, j] = max(_x(w)[:, j].mean(), 1.0)
            resp = _media_response(w, w.expected_kpi(xi), y0)[t0:]
            assert np.abs(_media_response(w, w.expected_kpi(xi), y0)[:t0]).max() < 1e-9
            peak = int(np.argmax(resp))
            if info["adstock"]["kind"] == "geometric":
                assert peak == 0, (w.name, c)
            else:
                seen[info["adstock"]["kind"]] += 1
                assert peak >= 1 and resp[0] < 0.99 * resp.max(), (w.name, c, peak)
                if not w.structure["drift"] or w.structure["drift"]["channel"] != c:
                    assert peak == info["adstock"]["peak_lag"], (w.name, c)
    assert seen["weibull"] >= 20 and seen["delayed"] >= 20


def test_break_changes_marginal_effect(worlds: list[World]) -> None:
    broke = [w for w in worlds if w.structure["break"]]
    assert broke
    for w in broke:
        b = w.structure["break"]
        j, tb, factor = w.spend_cols.index(b["channel"]), b["period"], b["factor"]
        assert 0.2 <= abs(factor - 1.0) <= 0.5
        assert str(pd.Timestamp(w.data["date"].iloc[tb]).date()) == b["date"]
        win = 100 if w.granularity == "day" else 20
        before, after = _impulse_effect(w, j, tb - win, tb), _impulse_effect(w, j, tb, tb + win)
        assert after / before == pytest.approx(factor, rel=2e-3), w.name
        # the other channels do not change at the break
        drift = w.structure["drift"]["channel"] if w.structure["drift"] else None
        for k in range(len(w.spend_cols)):
            if k != j and w.spend_cols[k] != drift:
                ratio = _impulse_effect(w, k, tb, tb + win) / _impulse_effect(w, k, tb - win, tb)
                assert ratio == pytest.approx(1.0, rel=2e-3)
                break
        # nothing in the data records it
        assert not any(col.startswith("break") for col in w.data.columns)


def test_quick_seeds_cover_every_kind(worlds: list[World]) -> None:
    assert 20 <= len(QUICK_SEEDS) <= 28 and len(set(QUICK_SEEDS)) == len(QUICK_SEEDS)
    assert all(0 <= s < N for s in QUICK_SEEDS)
    every = set().union(*(structure_kinds(w) for w in worlds))
    quick = set().union(*(structure_kinds(worlds[s]) for s in QUICK_SEEDS))
    assert quick == every, every - quick
    assert {"delayed_peak", "break", "tiny_channel", "correlated_pair", "granularity:day", "granularity:week",
            "holidays:table", "holidays:flag", "holidays:none", "kpi:additive", "kpi:multiplicative",
            "kpi:loglinear"} <= quick
