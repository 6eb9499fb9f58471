"""Conversion probabilities of a journey world for any subset of its touches, and the exact removal truth.

Per journey j with hidden intent z_j the baseline chance to buy is b_j = sigmoid(alpha + gamma * z_j). Touch t of
channel c carries an effect

    e_t = scale * relative_effect_c * 0.5 ** (age_t / half_life_c) * repeat_c ** (k_t - 1) * synergy_t * view_t

(age from the journey's decision time, k_t = how many touches of c up to and including t, synergy_t = the multiplier
when an earlier touch of the synergy channel is present and c is another channel, view_t = view_factor for a view).
Link "noisy_or": every touch is an independent extra chance 1 - exp(-e_t), P_j = 1 - (1 - b_j) * exp(-sum_t e_t).
Link "logistic": P_j = sigmoid(alpha + gamma * z_j + sum_t e_t). Removing touches never moves the decision time.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def bisect(f, lo: float, hi: float, target: float, iters: int = 50) -> float:
    """x in [lo, hi] with f(x) = target for an increasing f (clipped to the bracket)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


class Engine:
    """Touch arrays (rows sorted by journey, then time) and the generator's conversion probability for any mask."""

    def __init__(self, structure: dict, channels: list[str], jid: np.ndarray, ch: np.ndarray, is_view: np.ndarray,
                 age_days: np.ndarray, intent: np.ndarray) -> None:
        self.structure, self.channels = structure, channels
        self.jid, self.ch, self.is_view, self.age = jid, ch, is_view, age_days
        self.n_journeys, self.n_touches = len(intent), len(jid)
        info = [structure["channels"][c] for c in channels]
        self.link = structure["link"]
        self.gamma_z = structure["intent"]["baseline_slope"] * intent
        self.alpha, self.scale = 0.0, 1.0
        rel = np.array([i["relative_effect"] for i in info])
        hl = np.array([i["half_life_days"] or np.inf for i in info])
        static = rel[ch] * np.exp2(-age_days / hl[ch])
        if structure["views"]:
            static = np.where(is_view, static * structure["views"]["view_factor"], static)
        self.static = static
        self.log_rf = np.log(np.array([i["repeat_factor"] for i in info]))
        syn = structure["synergy"]
        self.syn_ch = channels.index(syn["channel"]) if syn else None
        self.syn_mult = syn["multiplier"] if syn else 1.0
        # grouping by (journey, channel) in time order, for repeat counts under any mask
        key = jid.astype(np.int64) * len(channels) + ch
        self.perm = np.argsort(key, kind="stable")
        ks = key[self.perm]
        start = np.r_[True, ks[1:] != ks[:-1]]
        self.group_start = np.maximum.accumulate(np.where(start, np.arange(len(ks)), 0))
        self._full = self.relative_hazard()

    def relative_hazard(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Per-journey sum of touch effects at scale 1 using only the touches in `keep` (all when None)."""
        n = self.n_touches
        mask = np.ones(n, bool) if keep is None else np.asarray(keep, bool)
        if len(mask) != n:
            raise ValueError(f"keep must have one entry per touch ({n}), got {len(mask)}")
        e = self.static * mask
        if np.any(self.log_rf != 0.0):
            present = mask[self.perm].astype(np.int64)
            before = np.cumsum(present) - present
            rank = np.empty(n, np.int64)
            rank[self.perm] = before - before[self.group_start]
            e = e * np.exp(rank * self.log_rf[self.ch])
        if self.syn_ch is not None:
            rows = np.flatnonzero((self.ch == self.syn_ch) & mask)
            first = np.full(self.n_journeys, n, np.int64)
            j = self.jid[rows]
            lead = np.r_[True, j[1:] != j[:-1]] if len(rows) else np.zeros(0, bool)
            first[j[lead]] = rows[lead]
            boosted = (self.ch != self.syn_ch) & (first[self.jid] < np.arange(n))
            e = np.where(boosted, e * self.syn_mult, e)
        return np.bincount(self.jid, weights=e, minlength=self.n_journeys)

    def baseline(self) -> np.ndarray:
        """Per-journey chance to buy with no marketing at all."""
        return sigmoid(self.alpha + self.gamma_z)

    def prob_from_hazard(self, h_rel: np.ndarray, scale: float | None = None) -> np.ndarray:
        s = self.scale if scale is None else scale
        if self.link == "logistic":
            return sigmoid(self.alpha + self.gamma_z + s * h_rel)
        return 1.0 - (1.0 - self.baseline()) * np.exp(-s * h_rel)

    def prob(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Per-journey conversion probability with only the touches in `keep` (all when None)."""
        return self.prob_from_hazard(self._full if keep is None else self.relative_hazard(keep))

    def calibrate(self, conversion_rate: float, baseline_fraction: float) -> None:
        """alpha so the mean baseline chance is baseline_fraction * conversion_rate, then the effect scale so the
        mean conversion probability is conversion_rate."""
        self.alpha = bisect(lambda a: sigmoid(a + self.gamma_z).mean(), -30.0, 10.0,
                            baseline_fraction * conversion_rate)
        ls = bisect(lambda x: self.prob_from_hazard(self._full, float(np.exp(x))).mean(), -25.0, 12.0,
                    conversion_rate)
        self.scale = float(np.exp(ls))


def compute_truth(eng: Engine, order_value: np.ndarray, lookback_days: float, noncausal: list[str],
                  converted: np.ndarray, last_channel: np.ndarray) -> dict:
    """Exact expected conversions and revenue lost when each channel's touches are all removed."""
    p_all = eng.prob()
    p0 = eng.baseline()
    inc, inc_rev = {}, {}
    for k, c in enumerate(eng.channels):
        d = p_all - eng.prob(eng.ch != k)
        inc[c], inc_rev[c] = float(d.sum()), float((d * order_value).sum())
    tot, tot_rev = sum(inc.values()), sum(inc_rev.values())
    d_lb = p_all - eng.prob(eng.age <= lookback_days)
    expected = float(p_all.sum())
    nc_idx = [eng.channels.index(c) for c in noncausal]
    return {
        "incremental_conversions": inc,
        "share": {c: v / tot if tot > 0 else 0.0 for c, v in inc.items()},
        "incremental_revenue": inc_rev,
        "revenue_share": {c: v / tot_rev if tot_rev > 0 else 0.0 for c, v in inc_rev.items()},
        "baseline_conversions": float(p0.sum()),
        "expected_conversions": expected,
        "baseline_share": float(p0.sum()) / expected,
        "baseline_revenue": float((p0 * order_value).sum()),
        "expected_revenue": float((p_all * order_value).sum()),
        "causal": [c for c in eng.channels if c not in noncausal],
        "noncausal": list(noncausal),
        "lost_beyond_lookback": {"conversions": float(d_lb.sum()), "revenue": float((d_lb * order_value).sum()),
                                 "lookback_days": lookback_days},
        "expected_last_touch_share": {c: float(p_all[last_channel == k].sum()) / expected
                                      for k, c in enumerate(eng.channels)},
        "noncausal_last_touch_share": float(p_all[np.isin(last_channel, nc_idx)].sum()) / expected,
        "realized_conversions": int(converted.sum()),
        "n_journeys": eng.n_journeys,
        "n_touches": eng.n_touches,
        "effect_scale": eng.scale,
        "baseline_intercept": eng.alpha,
    }
