"""Customer-journey worlds with planted causal truth, for judging multi-touch attribution models.

Written independently of the attribution models: people carry a hidden intent that (in some worlds) drives both their
chance to buy and which channels reach them, touches decay, repeat, boost each other or do nothing at all, and the
truth is the exact expected effect of removing each channel from the generator's own conversion probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.journey_worlds.structure import MECHANISMS, draw_structure, hidden_like_structure
from bench.journey_worlds.truth import Engine, bisect, compute_truth, sigmoid
from core.serialize import plain

DAY = 86_400
LOOKBACK_DAYS = 30.0


@dataclass(eq=False)
class JourneyWorld:
    """One world: the touch table a user would have, what was drawn, and the truth."""

    seed: int
    journeys: pd.DataFrame
    channels: list[str]
    structure: dict
    truth: dict
    lookback_days: float = LOOKBACK_DAYS
    # per journey (row = journey_id): intent, p_baseline, p_convert, order_value and any history columns
    hidden: pd.DataFrame | None = field(default=None, repr=False)
    engine: Engine | None = field(default=None, repr=False)

    def conversion_probability(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Exact per-journey conversion probability (rows of `hidden`) keeping only the touch rows of `journeys`
        where `keep` is True (all when None); the decision time of a journey stays at its original last touch."""
        return self.engine.prob(keep)


def _latent(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """Unit-variance hidden intent."""
    if kind == "logistic":
        return rng.logistic(0.0, np.sqrt(3.0) / np.pi, n)
    return rng.standard_normal(n)


def _draw_touches(s: dict, channels: list[str], z: np.ndarray, rng: np.random.Generator) -> dict:
    """Touch rows sorted by journey then time: journey, channel index, view flag, timestamp (s); and decision times."""
    n = len(z)
    info = [s["channels"][c] for c in channels]
    kappa = s["intent"]["touch_slope"]
    ln = s["length"]
    mean_extra = ln["mean_extra_touches"] * np.exp(kappa * z - 0.5 * kappa**2)
    extra = rng.poisson(rng.gamma(ln["shape"], mean_extra / ln["shape"]))
    n_t = 1 + np.minimum(extra, ln["max_touches"] - 1)
    jid = np.repeat(np.arange(n, dtype=np.int64), n_t)
    ends = np.cumsum(n_t)
    first, last = ends - n_t, ends - 1
    # channel of each touch: per-person reach shares tilted by intent
    logits = (np.log([i["exposure_weight"] for i in info])[None, :]
              + z[:, None] * np.array([i["intent_loading"] for i in info])[None, :])
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    u = rng.uniform(size=len(jid))
    ch = np.zeros(len(jid), np.int64)
    for k in range(len(channels) - 1):
        ch += u > cum[jid, k]
    view_share = np.array([i["view_share"] for i in info])
    is_view = rng.uniform(size=len(jid)) < view_share[ch]
    # journey spans: short ones inside the lookback, and (lookback_cut worlds) some of 30-90 days
    sp = s["span"]
    span = np.minimum(rng.exponential(sp["mean_days"], n), sp["max_days"])
    lb = s["lookback"]
    if lb:
        long = rng.uniform(size=n) < lb["long_fraction"]
        span[long] = rng.uniform(lb["long_min_days"], lb["long_max_days"], long.sum())
    span[n_t == 1] = 0.0
    # touch times: first at the span's start, last at the decision time, the rest in between (sorted)
    e = rng.exponential(size=len(jid))
    e[first] = 0.0
    cs = np.cumsum(e)
    within = cs - cs[first][jid]
    total = within[last]
    frac = np.divide(within, total[jid], out=np.ones_like(within), where=total[jid] > 0)
    age = span[jid] * (1.0 - frac) ** sp["timing_power"]
    start = int(pd.Timestamp(s["start"]).value // 10**9)
    decision = start + np.round((span + rng.uniform(size=n) * (s["days"] - span)) * DAY).astype(np.int64)
    ts = decision[jid] - np.round(age * DAY).astype(np.int64)
    return {"jid": jid, "ch": ch, "is_view": is_view, "ts": ts, "last": last}


def _ages(jid: np.ndarray, ts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    last = np.cumsum(np.bincount(jid, minlength=n)) - 1
    return (ts[last][jid] - ts) / DAY, last


def _add_closers(s: dict, channels: list[str], t: dict, z: np.ndarray, rng: np.random.Generator) -> dict:
    """Append a non-causal closing touch (a direct visit, a brand search) to the journeys of likely buyers, so that
    the target share of expected conversions has a non-causal last touch."""
    cl = s["closers"]
    n = len(z)
    age, last = _ages(t["jid"], t["ts"], n)
    eng = Engine(s, channels, t["jid"], t["ch"], t["is_view"], age, z)
    eng.calibrate(s["conversion_rate_target"], s["baseline_fraction_target"])
    p = eng.prob()
    nc = np.array([channels.index(c) for c in cl["channels"]])
    natural = np.isin(t["ch"][last], nc)
    b = cl["intent_slope"] * z
    target = cl["target_last_touch_share"] * p.sum()

    def share(a: float) -> float:
        return float((p * np.where(natural, 1.0, sigmoid(a + b))).sum())

    a = bisect(share, -30.0, 10.0, target) if share(-30.0) < target else -np.inf
    close = rng.uniform(size=n) < sigmoid(a + b)
    w = np.array([s["channels"][c]["exposure_weight"] for c in cl["channels"]])
    pick = nc[rng.choice(len(nc), close.sum(), p=w / w.sum())]
    gap = np.round(np.minimum(rng.exponential(cl["gap_days_mean"], close.sum()), 1.0) * DAY).astype(np.int64) + 1
    at = last[close] + 1
    cl["intercept"] = float(a) if np.isfinite(a) else None  # None: natural last touches already reach the target
    cl["closed_journeys"] = int(close.sum())
    return {"jid": np.insert(t["jid"], at, np.flatnonzero(close)), "ch": np.insert(t["ch"], at, pick),
            "is_view": np.insert(t["is_view"], at, False), "ts": np.insert(t["ts"], at, t["ts"][last[close]] + gap)}


def _simulate(seed: int, s: dict) -> JourneyWorld:
    n = s["n_journeys"]
    channels = list(s["channels"])
    rng = np.random.default_rng([seed, 1, n])
    cust = None
    if s["customers"]:
        n_cust = max(1, int(round(n / s["customers"]["journeys_per_customer"])))
        cust = np.sort(rng.integers(0, n_cust, n)) + 1
        z = _latent(rng, s["intent"]["latent"], n_cust)[cust - 1]
    else:
        z = _latent(rng, s["intent"]["latent"], n)
    t = _draw_touches(s, channels, z, rng)
    if s["closers"]:
        t = _add_closers(s, channels, t, z, rng)
    jid, ch, is_view, ts = t["jid"], t["ch"], t["is_view"], t["ts"]
    age, last = _ages(jid, ts, n)
    eng = Engine(s, channels, jid, ch, is_view, age, z)
    eng.calibrate(s["conversion_rate_target"], s["baseline_fraction_target"])
    p = eng.prob()
    ov = s["order_value"]
    value = np.round(ov["mean"] * np.exp(ov["sigma"] * rng.standard_normal(n) - 0.5 * ov["sigma"] ** 2
                                         + ov["intent_slope"] * z), 2)
    value = np.maximum(value, 1.0)
    converted = rng.uniform(size=n) < p
    for c in channels:
        info = s["channels"][c]
        info["effect"] = eng.scale * info["relative_effect"]
        if s["link"] == "noisy_or":
            info["lift"] = float(1.0 - np.exp(-info["effect"]))
    s["calibrated"] = {"baseline_intercept": eng.alpha, "effect_scale": eng.scale}

    cols: dict[str, object] = {"journey_id": jid}
    if cust is not None:
        cols["customer_id"] = cust[jid]
    cols["timestamp"] = (ts * 10**9).astype("datetime64[ns]")
    cols["channel"] = np.array(channels, dtype=object)[ch]
    if s["views"]:
        cols["interaction"] = np.where(is_view, "view", "click").astype(object)
    cols["converted"] = converted[jid]
    cols["revenue"] = np.where(converted, value, 0.0)[jid]
    hidden = {"journey_id": np.arange(n), "intent": z, "p_baseline": eng.baseline(), "p_convert": p,
              "order_value": value}
    for name, h in s["history"].items():
        if h:
            lam = h["mean"] * np.exp(h["intent_slope"] * z - 0.5 * h["intent_slope"] ** 2)
            x = rng.poisson(lam)
            cols[name], hidden[name] = x[jid], x
    df = pd.DataFrame(cols)
    truth = compute_truth(eng, value, LOOKBACK_DAYS, [c for c in channels if not s["channels"][c]["causal"]],
                          converted, ch[last])
    s["n_touches"] = int(len(jid))
    return JourneyWorld(seed, df, channels, plain(s), plain(truth), LOOKBACK_DAYS, pd.DataFrame(hidden), eng)


def world_structure(seed: int) -> dict:
    """The (uncalibrated) structure of world `seed`, without generating any journeys."""
    return draw_structure(seed)


def make_journey_world(seed: int, n_journeys: int | None = None) -> JourneyWorld:
    """Draw journey world `seed` (structure from the seed alone; `n_journeys` overrides only the sample size)."""
    s = draw_structure(seed)
    if n_journeys is not None:
        if n_journeys < 100:
            raise ValueError("n_journeys must be >= 100")
        s["n_journeys"] = int(n_journeys)
    return _simulate(seed, s)


def hidden_like_world(n_journeys: int = 1_000_000, seed: int = 0) -> JourneyWorld:
    """A world of the fixed `hidden_like_structure` (6 channels, ~2.8% conversion, intent confounding, decay, repeats,
    a TikTok synergy, non-causal Direct as the last touch of ~40% of conversions, ~50% baseline); `seed` changes only
    the draws."""
    s = hidden_like_structure()
    s["n_journeys"] = int(n_journeys)
    return _simulate(seed, s)


def mechanisms_on(world_or_structure: JourneyWorld | dict) -> set[str]:
    """The mechanisms (of MECHANISMS) a world or structure has switched on."""
    s = world_or_structure.structure if isinstance(world_or_structure, JourneyWorld) else world_or_structure
    return {m for m in MECHANISMS if s["mechanisms"][m]}


ALL_SEEDS: tuple[int, ...] = tuple(range(60))
# 12 seeds that together hold every mechanism at least 3 times (the pure fixed-lift world once), both links and
# latents, every channel count and length shape (greedy cover over ALL_SEEDS).
QUICK_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 10, 18, 31, 32, 41, 50)
