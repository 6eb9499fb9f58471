"""Journey worlds (bench/journey_worlds): determinism, data format, structural coverage, confounding and a truth that
matches a slow, independent re-simulation of the removal counterfactual."""

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

from bench.journey_worlds import (  # noqa: E402
    ALL_SEEDS,
    MECHANISMS,
    QUICK_SEEDS,
    JourneyWorld,
    hidden_like_world,
    make_journey_world,
    mechanisms_on,
    world_structure,
)

POOL = {"Google Ads", "Meta Ads", "TikTok", "YouTube", "Email", "Affiliate", "Retargeting", "Brand Search", "Direct",
        "Pinterest", "Podcast"}
UPPER = {"Meta Ads", "TikTok", "YouTube", "Pinterest", "Podcast"}
SMALL = 6000


@pytest.fixture(scope="module")
def quick() -> dict[int, JourneyWorld]:
    return {s: make_journey_world(s, SMALL) for s in QUICK_SEEDS}


@pytest.fixture(scope="module")
def hidden_small() -> JourneyWorld:
    return hidden_like_world(100_000, seed=3)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _groups(w: JourneyWorld) -> list[tuple[int, int]]:
    j = w.journeys["journey_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, j[1:] != j[:-1]])
    return list(zip(starts, np.r_[starts[1:], len(j)], strict=True))


def _reference_effects(w: JourneyWorld, drop: str | None = None, max_age: float | None = None) -> np.ndarray:
    """Per-touch effect (0 for a dropped touch: of channel `drop`, or older than `max_age` days) read straight from
    the structure, one journey at a time."""
    s = w.structure
    df = w.journeys
    ts = df["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64)
    chans = df["channel"].to_numpy()
    views = df["interaction"].to_numpy() == "view" if "interaction" in df else np.zeros(len(df), bool)
    syn = s["synergy"]
    out = np.zeros(len(df))
    for a, b in _groups(w):
        decision = ts[b - 1]
        seen: Counter = Counter()
        syn_seen = False
        for t in range(a, b):
            c = chans[t]
            if c == drop or (max_age is not None and (decision - ts[t]) / 86400 > max_age):
                continue
            info = s["channels"][c]
            e = info["effect"] * info["repeat_factor"] ** seen[c]
            seen[c] += 1
            if info["half_life_days"]:
                e *= 0.5 ** ((decision - ts[t]) / 86400 / info["half_life_days"])
            if syn and syn_seen and c != syn["channel"]:
                e *= syn["multiplier"]
            if syn and c == syn["channel"]:
                syn_seen = True
            if views[t]:
                e *= s["views"]["view_factor"]
            out[t] = e
    return out


def _reference_p(w: JourneyWorld, eff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = w.structure
    logit = s["calibrated"]["baseline_intercept"] + s["intent"]["baseline_slope"] * w.hidden["intent"].to_numpy()
    h = np.array([eff[a:b].sum() for a, b in _groups(w)])
    if s["link"] == "logistic":
        return _sigmoid(logit), _sigmoid(logit + h)
    return _sigmoid(logit), 1.0 - (1.0 - _sigmoid(logit)) * np.exp(-h)


def _simulate_conversions(w: JourneyWorld, eff: np.ndarray, u_base: np.ndarray, u_touch: np.ndarray) -> np.ndarray:
    """Conversions per replicate: noisy-or as a baseline event plus one independent chance per touch (the person
    buys if any fires), logistic as one draw from the journey's probability."""
    b, p = _reference_p(w, eff)
    if w.structure["link"] == "logistic":
        return (u_base < p[None, :]).sum(axis=1)
    starts = np.array([a for a, _ in _groups(w)])
    fires = (u_touch < (1.0 - np.exp(-eff))[None, :]).astype(np.int64)
    any_touch = np.add.reduceat(fires, starts, axis=1) > 0
    return ((u_base < b[None, :]) | any_touch).sum(axis=1)


# ---------------------------------------------------------------- determinism and structure


@pytest.mark.parametrize("seed", [0, 41])
def test_same_seed_same_world(seed: int) -> None:
    a, b = make_journey_world(seed, 3000), make_journey_world(seed, 3000)
    pd.testing.assert_frame_equal(a.journeys, b.journeys)
    pd.testing.assert_frame_equal(a.hidden, b.hidden)
    assert a.structure == b.structure and a.truth == b.truth and a.channels == b.channels
    c = make_journey_world(seed + 1, 3000)
    assert not a.journeys.equals(c.journeys) and a.structure != c.structure


def test_structures_vary_across_seeds() -> None:
    ss = [world_structure(s) for s in ALL_SEEDS]
    assert len({frozenset(mechanisms_on(s)) for s in ss}) >= 20
    assert len({tuple(s["channels"]) for s in ss}) >= 40
    assert Counter(len(s["channels"]) for s in ss).keys() == set(range(4, 9))
    assert all(set(s["channels"]) <= POOL for s in ss)
    cr = [s["conversion_rate_target"] for s in ss]
    base = [s["baseline_fraction_target"] for s in ss]
    assert 0.01 <= min(cr) < 0.02 and 0.06 < max(cr) <= 0.08
    assert 0.2 <= min(base) < 0.3 and 0.7 < max(base) <= 0.8
    assert all(150_000 <= s["n_journeys"] <= 300_000 for s in ss)
    assert len({s["length"]["shape"] for s in ss}) == 4 and len({s["intent"]["latent"] for s in ss}) == 2
    hist = Counter(k for s in ss for k, v in s["history"].items() if v)
    assert 10 <= hist["prior_orders"] <= 50 and 10 <= hist["sessions_before"] <= 50
    assert 10 <= sum(s["customers"] is not None for s in ss) <= 50
    for s in ss:
        json.dumps(s)


def test_every_mechanism_appears_often() -> None:
    assert ALL_SEEDS == tuple(range(60)) and len(QUICK_SEEDS) == 12 and set(QUICK_SEEDS) <= set(ALL_SEEDS)
    counts = Counter(m for s in ALL_SEEDS for m in mechanisms_on(world_structure(s)))
    for m in MECHANISMS:
        assert counts[m] >= 5, (m, counts)
    assert sum(mechanisms_on(world_structure(s)) == {"fixed_lift"} for s in ALL_SEEDS) >= 3
    quick = Counter(m for s in QUICK_SEEDS for m in mechanisms_on(world_structure(s)))
    assert all(quick[m] >= 3 for m in MECHANISMS), quick
    for s in ALL_SEEDS:
        st = world_structure(s)
        mech = st["mechanisms"]
        assert mech["fixed_lift"] == (not any(mech[k] for k in ("logistic_link", "decay", "repeats", "synergy",
                                                                 "views")))
        assert (st["link"] == "logistic") == mech["logistic_link"]
        info = st["channels"].values()
        assert all((i["half_life_days"] is not None) == mech["decay"] for i in info)
        assert all(1.0 <= i["half_life_days"] <= 14.0 for i in info if mech["decay"])
        assert all((0.3 <= i["repeat_factor"] <= 0.8) if mech["repeats"] else i["repeat_factor"] == 1.0 for i in info)
        if mech["synergy"]:
            assert st["synergy"]["channel"] in UPPER & set(st["channels"])
            assert 1.5 <= st["synergy"]["multiplier"] <= 2.5
        nc = {c for c, i in st["channels"].items() if not i["causal"]}
        assert bool(nc) == mech["noncausal"] and nc <= {"Direct", "Brand Search"}
        assert all(i["relative_effect"] == 0.0 for c, i in st["channels"].items() if c in nc)
        assert all(i["relative_effect"] > 0.0 for c, i in st["channels"].items() if c not in nc)
        assert any(i["view_share"] > 0 for i in info) == mech["views"]
        assert (st["lookback"] is not None) == mech["lookback_cut"]
        assert any(i["intent_loading"] != 0 for i in info) == mech["intent"]


def test_quick_worlds_match_their_structure(quick: dict[int, JourneyWorld]) -> None:
    for s, w in quick.items():
        st = world_structure(s)
        assert w.structure["mechanisms"] == st["mechanisms"] and w.channels == list(st["channels"])
        assert w.structure["n_journeys"] == SMALL == len(w.hidden)
        json.dumps(w.structure, allow_nan=False)
        json.dumps(w.truth, allow_nan=False)


# ---------------------------------------------------------------- data


def test_data_format(quick: dict[int, JourneyWorld], hidden_small: JourneyWorld) -> None:
    for w in [*quick.values(), hidden_small]:
        df, s = w.journeys, w.structure
        req = ["journey_id", "timestamp", "channel", "converted", "revenue"]
        opt = {"customer_id", "interaction", "prior_orders", "sessions_before"}
        assert set(req) <= set(df.columns) and set(df.columns) <= set(req) | opt
        assert ("interaction" in df) == s["mechanisms"]["views"]
        for k in ("prior_orders", "sessions_before"):
            assert (k in df) == (s["history"][k] is not None)
            if k in df:
                assert pd.api.types.is_integer_dtype(df[k]) and (df[k] >= 0).all()
        assert pd.api.types.is_integer_dtype(df["journey_id"])
        assert pd.api.types.is_datetime64_any_dtype(df["timestamp"])
        assert df["converted"].dtype == bool and df["revenue"].dtype == float
        assert set(df["channel"].unique()) <= set(w.channels)
        assert not df.isna().any().any()
        g = df.groupby("journey_id", sort=False)
        assert (g["converted"].nunique() == 1).all() and (g["revenue"].nunique() == 1).all()
        assert ((df["revenue"] > 0) == df["converted"]).all()
        for k in [c for c in ("customer_id", "prior_orders", "sessions_before") if c in df]:
            assert (g[k].nunique() == 1).all()
        jid = df["journey_id"].to_numpy()
        assert (np.diff(jid) >= 0).all() and len(np.unique(jid)) == s["n_journeys"]
        t = df["timestamp"].to_numpy()
        assert ((np.diff(t) >= np.timedelta64(0)) | (np.diff(jid) > 0)).all()
        conv = g["converted"].first()
        assert 0.5 * s["conversion_rate_target"] < conv.mean() < 1.6 * s["conversion_rate_target"]
        span = (t.max() - t.min()) / np.timedelta64(1, "D")
        assert 150 < span < 200
        if "interaction" in df:
            assert set(df["interaction"].unique()) == {"click", "view"}


def test_mechanisms_show_in_data(quick: dict[int, JourneyWorld]) -> None:
    for w in quick.values():
        df, s = w.journeys, w.structure
        last = df.groupby("journey_id")["timestamp"].transform("max")
        age = (last - df["timestamp"]).dt.total_seconds() / 86400
        old = age > w.lookback_days
        lb = w.truth["lost_beyond_lookback"]["conversions"]
        if s["mechanisms"]["lookback_cut"]:
            frac_long = old.groupby(df["journey_id"]).any().mean()
            assert 0.05 < frac_long < 0.5 and age.max() > 60
            if not s["mechanisms"]["repeats"]:  # old touches still help (with repeats their removal can also help)
                assert lb > 0
        else:
            assert not old.any() and lb == 0.0
        z = w.hidden["intent"]
        if s["mechanisms"]["intent"]:
            assert np.corrcoef(z, w.hidden["p_baseline"])[0, 1] > 0.5
            n_t = df.groupby("journey_id").size().to_numpy()
            assert np.corrcoef(z, n_t)[0, 1] > 0.02
            for k in ("prior_orders", "sessions_before"):
                if k in w.hidden:
                    r = np.corrcoef(z, w.hidden[k])[0, 1]
                    assert 0.1 < r < 0.9, (k, r)
        else:
            assert np.ptp(w.hidden["p_baseline"]) < 1e-12
        if s["mechanisms"]["views"]:
            assert 0.05 < (df["interaction"] == "view").mean() < 0.8


# ---------------------------------------------------------------- truth


@pytest.mark.parametrize("which", [50, 41, 31, "hidden"])
def test_truth_matches_resimulated_removal(which: int | str) -> None:
    w = hidden_like_world(4000, seed=1) if which == "hidden" else make_journey_world(which, 4000)
    eff = _reference_effects(w)
    b, p = _reference_p(w, eff)
    np.testing.assert_allclose(b, w.hidden["p_baseline"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p, w.hidden["p_convert"], rtol=1e-9, atol=1e-12)
    assert w.truth["expected_conversions"] == pytest.approx(p.sum(), rel=1e-9)
    assert w.truth["baseline_conversions"] == pytest.approx(b.sum(), rel=1e-9)
    assert abs(b.sum() / p.sum() - w.structure["baseline_fraction_target"]) < 0.01
    _, p_lb = _reference_p(w, _reference_effects(w, max_age=w.lookback_days))
    assert w.truth["lost_beyond_lookback"]["conversions"] == pytest.approx((p - p_lb).sum(), rel=1e-9, abs=1e-12)
    rng = np.random.default_rng(123)
    reps = 400
    u_base = rng.uniform(size=(reps, len(w.hidden)))
    u_touch = rng.uniform(size=(reps, len(w.journeys)))
    full = _simulate_conversions(w, eff, u_base, u_touch)
    assert abs(full.mean() - p.sum()) < 4 * full.std() / np.sqrt(reps)
    for c in w.channels:
        lost = full - _simulate_conversions(w, _reference_effects(w, drop=c), u_base, u_touch)
        truth = w.truth["incremental_conversions"][c]
        se = lost.std() / np.sqrt(reps)
        assert abs(lost.mean() - truth) <= 4 * se + 1e-9, (c, lost.mean(), truth, se)
        if c in w.truth["noncausal"]:
            assert truth == 0.0 and (lost == 0).all()
        else:
            assert truth > 0 and lost.mean() > 0


def test_shares_and_baseline(quick: dict[int, JourneyWorld], hidden_small: JourneyWorld) -> None:
    for w in [*quick.values(), hidden_small]:
        t, s = w.truth, w.structure
        assert set(t["causal"]) | set(t["noncausal"]) == set(w.channels) and not set(t["causal"]) & set(t["noncausal"])
        for key in ("share", "revenue_share"):
            assert set(t[key]) == set(w.channels) and sum(t[key].values()) == pytest.approx(1.0, abs=1e-9)
            assert all(t[key][c] == 0.0 for c in t["noncausal"])
            assert all(t[key][c] > 0.0 for c in t["causal"])
        assert t["noncausal"] == [c for c in w.channels if not s["channels"][c]["causal"]]
        assert abs(t["baseline_share"] - s["baseline_fraction_target"]) < 0.01
        assert t["expected_conversions"] == pytest.approx(s["conversion_rate_target"] * s["n_journeys"], rel=0.01)
        sd = np.sqrt((w.hidden["p_convert"] * (1 - w.hidden["p_convert"])).sum())
        assert abs(t["realized_conversions"] - t["expected_conversions"]) < 5 * sd
        v = w.hidden["order_value"].to_numpy()
        for c in w.channels:
            d = w.hidden["p_convert"].to_numpy() - w.conversion_probability(w.engine.ch != w.channels.index(c))
            assert t["incremental_conversions"][c] == pytest.approx(d.sum(), rel=1e-9, abs=1e-9)
            assert t["incremental_revenue"][c] == pytest.approx((d * v).sum(), rel=1e-9, abs=1e-9)


def test_confounding_is_real(quick: dict[int, JourneyWorld]) -> None:
    hits = 0
    for w in quick.values():
        if not (w.structure["mechanisms"]["intent"] and w.structure["mechanisms"]["noncausal"]):
            continue
        df = w.journeys
        touched = df["channel"].isin(w.truth["noncausal"]).groupby(df["journey_id"]).any()
        conv = df.groupby("journey_id")["converted"].first()
        assert conv[touched].mean() > 1.5 * conv[~touched].mean(), w.seed
        assert w.truth["noncausal_last_touch_share"] > 0.1
        hits += 1
    assert hits >= 2


def test_hidden_like_world(hidden_small: JourneyWorld) -> None:
    w = hidden_small
    assert len(w.channels) == 6 and w.truth["noncausal"] == ["Direct"]
    assert {"Email", "Affiliate", "Retargeting", "Direct", "TikTok"} <= set(w.channels)
    assert w.structure["synergy"] == {"channel": "TikTok", "multiplier": 2.0}
    assert mechanisms_on(w) == {"intent", "decay", "repeats", "synergy", "noncausal"}
    df = w.journeys
    lasts = df.groupby("journey_id").tail(1)
    conv_last = lasts[lasts["converted"]]
    assert 0.30 <= (conv_last["channel"] == "Direct").mean() <= 0.55
    assert 0.40 <= w.truth["baseline_share"] <= 0.60
    assert 0.024 < len(conv_last) / len(lasts) < 0.032
    share = df.groupby("channel")["journey_id"].nunique()  # low-intent reach of TikTok, high-intent reach of Email
    z = w.hidden.set_index("journey_id")["intent"]
    mean_z = {c: z[df.loc[df["channel"] == c, "journey_id"].unique()].mean() for c in share.index}
    assert mean_z["TikTok"] < 0 < mean_z["Email"] and mean_z["Direct"] > mean_z["Google Ads"]


def test_default_world_is_fast() -> None:
    t = time.perf_counter()
    w = make_journey_world(QUICK_SEEDS[1])
    secs = time.perf_counter() - t
    assert 150_000 <= len(w.hidden) <= 300_000
    assert secs < 10.0
