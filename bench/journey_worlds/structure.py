"""Structure of a journey world: which mechanisms are on and their parameters, drawn from the seed alone.

The structure never depends on the number of journeys, so a small world for a test has exactly the mechanisms and
parameters of the default-sized world of the same seed (only the calibrated intercept and effect scale move a little).
"""

from __future__ import annotations

import numpy as np

MECHANISMS = ("fixed_lift", "intent", "logistic_link", "decay", "repeats", "synergy", "noncausal", "views",
              "lookback_cut")

# channel: (range of the intent loading of its reach, can be a view, upper funnel)
POOL: dict[str, tuple[tuple[float, float], bool, bool]] = {
    "Google Ads": ((-0.2, 0.4), True, False),
    "Meta Ads": ((-1.0, -0.3), True, True),
    "TikTok": ((-1.2, -0.5), True, True),
    "YouTube": ((-1.0, -0.3), True, True),
    "Email": ((0.6, 1.4), False, False),
    "Affiliate": ((0.4, 1.2), False, False),
    "Retargeting": ((0.6, 1.3), True, False),
    "Brand Search": ((0.7, 1.5), False, False),
    "Direct": ((0.8, 1.6), False, False),
    "Pinterest": ((-0.9, -0.3), True, True),
    "Podcast": ((-0.3, 0.3), False, True),
}
NONCAUSAL_CANDIDATES = ("Direct", "Brand Search")
UPPER = tuple(c for c, v in POOL.items() if v[2])
VIEWABLE = tuple(c for c, v in POOL.items() if v[1])
STARTS = ("2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01", "2024-01-01", "2024-04-01", "2024-07-01")


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def draw_structure(seed: int) -> dict:
    """The structure of world `seed` before calibration (plain, json-serialisable types)."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    rng = np.random.default_rng([seed, 7177])
    if rng.uniform() < 0.33:  # the simplest worlds: every touch an independent, constant extra chance
        logistic = decay = repeats = synergy = views = False
        intent, noncausal, lookback = (bool(rng.uniform() < p) for p in (0.25, 0.25, 0.25))
    else:
        intent, logistic, decay, repeats, synergy, noncausal, views, lookback = (
            bool(rng.uniform() < p) for p in (0.65, 0.4, 0.6, 0.55, 0.45, 0.55, 0.45, 0.45))
    mech = {"fixed_lift": not (logistic or decay or repeats or synergy or views), "intent": intent,
            "logistic_link": logistic, "decay": decay, "repeats": repeats, "synergy": synergy,
            "noncausal": noncausal, "views": views, "lookback_cut": lookback}

    # ---- channels
    n_ch = int(rng.integers(4, 9))
    nc: list[str] = []
    if noncausal:
        nc = [["Direct"], ["Brand Search"], ["Direct", "Brand Search"]][int(rng.choice(3, p=[0.45, 0.25, 0.3]))]
    required = list(nc)
    syn_ch = str(rng.choice(UPPER)) if synergy else None
    if syn_ch:
        required.append(syn_ch)
    if views and not any(c in VIEWABLE for c in required):
        required.append(str(rng.choice(VIEWABLE)))
    rest = [c for c in POOL if c not in required]
    chosen = set(required) | {str(c) for c in rng.choice(rest, n_ch - len(required), replace=False)}
    channels = [c for c in POOL if c in chosen]
    ch_info = {}
    for c in channels:
        lo, hi = POOL[c][0]
        ch_info[c] = {
            "causal": c not in nc,
            "relative_effect": 0.0 if c in nc else float(np.exp(rng.normal(0.0, 0.6))),
            "exposure_weight": float(np.exp(rng.normal(0.0, 0.5))),
            "intent_loading": _u(rng, lo, hi) if intent else 0.0,
            "half_life_days": _logu(rng, 1.0, 14.0) if decay else None,
            "repeat_factor": _u(rng, 0.3, 0.8) if repeats else 1.0,
            "view_share": _u(rng, 0.3, 0.8) if views and POOL[c][1] else 0.0,
        }

    latent = str(rng.choice(["normal", "logistic"]))
    structure = {
        "mechanisms": mech,
        "link": "logistic" if logistic else "noisy_or",
        "channels": ch_info,
        "n_journeys": int(rng.integers(150, 301)) * 1000,
        "start": str(rng.choice(STARTS)),
        "days": 182,
        "conversion_rate_target": _logu(rng, 0.01, 0.08),
        "baseline_fraction_target": _u(rng, 0.2, 0.8),
        "intent": {"on": intent, "latent": latent, "baseline_slope": _u(rng, 0.8, 1.6) if intent else 0.0,
                   "touch_slope": _u(rng, 0.15, 0.5) if intent else 0.0},
        "length": {"mean_extra_touches": _logu(rng, 0.5, 4.0), "shape": float(rng.choice([0.5, 1.0, 2.0, 5.0])),
                   "max_touches": 40},
        "span": {"mean_days": _u(rng, 2.0, 12.0), "max_days": 29.0, "timing_power": _u(rng, 1.0, 2.0)},
        "lookback": ({"long_fraction": _u(rng, 0.15, 0.4), "long_min_days": 30.0, "long_max_days": 90.0}
                     if lookback else None),
        "synergy": {"channel": syn_ch, "multiplier": _u(rng, 1.5, 2.5)} if synergy else None,
        "views": {"view_factor": _u(rng, 0.05, 0.25)} if views else None,
        "closers": ({"channels": nc, "target_last_touch_share": _u(rng, 0.15, 0.45),
                     "intent_slope": _u(rng, 1.0, 2.0) if intent else 0.0, "gap_days_mean": 0.3}
                    if noncausal else None),
        "order_value": {"mean": _logu(rng, 30.0, 200.0), "sigma": _u(rng, 0.3, 0.8),
                        "intent_slope": _u(rng, 0.0, 0.3) if intent else 0.0},
    }
    p_hist = 0.55 if intent else 0.2
    structure["history"] = {
        "prior_orders": ({"mean": _u(rng, 0.3, 1.5), "intent_slope": _u(rng, 0.4, 0.9)}
                         if rng.uniform() < p_hist else None),
        "sessions_before": ({"mean": _u(rng, 1.0, 6.0), "intent_slope": _u(rng, 0.3, 0.7)}
                            if rng.uniform() < p_hist else None),
    }
    structure["customers"] = {"journeys_per_customer": _u(rng, 1.1, 2.0)} if rng.uniform() < 0.5 else None
    return structure


def hidden_like_structure() -> dict:
    """A fixed structure: 6 channels, hidden intent drives buying and reach, decaying and diminishing touches, a first
    TikTok touch doubles later touches of other channels, Direct non-causal but the last touch of ~40% of conversions,
    ~2.8% conversion rate with about half of all conversions happening without marketing."""
    ch = {  # relative effect, exposure weight, intent loading, half-life, repeat factor
        "Google Ads": (1.0, 1.0, 0.0, 4.0, 0.6),
        "TikTok": (0.6, 1.3, -0.9, 10.0, 0.5),
        "Email": (0.5, 1.0, 1.0, 2.0, 0.4),
        "Affiliate": (1.2, 0.5, 0.8, 6.0, 0.7),
        "Retargeting": (0.8, 0.8, 1.1, 1.5, 0.5),
        "Direct": (0.0, 0.6, 1.3, None, 1.0),
    }
    channels = {c: {"causal": c != "Direct", "relative_effect": r, "exposure_weight": w, "intent_loading": lo,
                    "half_life_days": h, "repeat_factor": rf, "view_share": 0.0}
                for c, (r, w, lo, h, rf) in ch.items()}
    mech = dict.fromkeys(MECHANISMS, False) | {"intent": True, "decay": True, "repeats": True, "synergy": True,
                                               "noncausal": True}
    return {
        "mechanisms": mech, "link": "noisy_or", "channels": channels, "n_journeys": 1_000_000,
        "start": "2024-01-01", "days": 182, "conversion_rate_target": 0.028, "baseline_fraction_target": 0.5,
        "intent": {"on": True, "latent": "normal", "baseline_slope": 1.2, "touch_slope": 0.3},
        "length": {"mean_extra_touches": 2.0, "shape": 1.0, "max_touches": 40},
        "span": {"mean_days": 6.0, "max_days": 29.0, "timing_power": 1.5},
        "lookback": None,
        "synergy": {"channel": "TikTok", "multiplier": 2.0},
        "views": None,
        "closers": {"channels": ["Direct"], "target_last_touch_share": 0.40, "intent_slope": 1.5,
                    "gap_days_mean": 0.3},
        "order_value": {"mean": 80.0, "sigma": 0.5, "intent_slope": 0.1},
        "history": {"prior_orders": None, "sessions_before": None},
        "customers": None,
    }
