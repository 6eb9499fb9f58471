"""Unified measurement: journey credit calibrated by the marketing mix model, channel by channel.

Journeys see individuals but not why they were reached; the marketing mix model sees spend and revenue over time,
which intent cannot fake, but not individuals. The reconciled view combines each channel's two estimates of its share
of incremental conversions on the log scale, weighted by how much each can be trusted:

* the MMM's weight comes from its own 90% interval on the channel's contribution (lift tests, when imported, have
  already narrowed it);
* the journey model's weight from its interval **plus a bias allowance** set by the channel's confounding level
  (:mod:`core.attribution.confounding`): a channel that reaches people who already meant to buy is trusted less,
  however narrow its statistical interval. The allowances were chosen on the journey-world sweep
  (``bench/attribution_worlds.py``), where they make the reconciled shares' errors smallest in the median world.

Channels the MMM does not model (or intent channels such as Direct) keep their journey share; the shares are
renormalised so that credit still sums to 100%. Where the two disagree beyond their intervals the result says so,
with the likely reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core.attribution.confounding import LOG_FLOOR, Z90, interval_log_sd

__all__ = ["MmmShares", "Reconciled", "reconcile", "BIAS_LOG_SD", "RECONCILED_INTERVAL_SCALE"]

# weight of the journey view in the reconciliation (log-sd added to its statistical one), chosen on the 60-world
# sweep for the smallest median share error with an MMM of ±10–50% precision
BIAS_LOG_SD = {"low": 0.1, "moderate": 0.2, "high": 0.4, "unknown": 0.3}
# the reconciled 90% interval's log-sd is widened by this factor so that it holds the truth at its stated rate on
# the sweep (without it: 80–83%)
RECONCILED_INTERVAL_SCALE = 1.4


@dataclass
class MmmShares:
    """The MMM's share of incremental revenue per channel with a 90% interval (shares over the MMM's channels)."""

    share: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]

    @classmethod
    def from_artifact(cls, artifact: Mapping) -> MmmShares | None:
        """From a fitted model's artifact: contributions and their intervals; None when nothing is positive."""
        chans = artifact.get("channels", {}) or {}
        contrib = {c: max(float(v.get("contribution") or 0.0), 0.0) for c, v in chans.items()}
        total = sum(contrib.values())
        if total <= 0:
            return None
        share, low, high = {}, {}, {}
        for c, v in chans.items():
            s = contrib[c] / total
            iv = v.get("contribution_interval") or [contrib[c], contrib[c]]
            lo, hi = (max(float(iv[0]), 0.0) / total, max(float(iv[1]), 0.0) / total)
            share[c], low[c], high[c] = s, min(lo, s), max(hi, s)
        return cls(share, low, high)

    @classmethod
    def simulated(cls, truth: Mapping[str, float], log_sd: float, rng: np.random.Generator) -> MmmShares:
        """An MMM whose shares err by ``exp(N(0, log_sd))`` around ``truth`` with an honest 90% interval."""
        names = list(truth)
        t = np.maximum(np.array([truth[c] for c in names], dtype=float), 0.002)
        est = t * np.exp(rng.normal(0.0, log_sd, len(t)))
        est = est / est.sum() * float(np.sum([truth[c] for c in names]))
        f = np.exp(Z90 * log_sd)
        return cls(dict(zip(names, est, strict=True)), dict(zip(names, est / f, strict=True)),
                   dict(zip(names, est * f, strict=True)))


@dataclass
class Reconciled:
    """Reconciled shares of conversion credit (sum 1) with 90% intervals and the channels where the views disagree."""

    shares: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    journey: dict[str, float]
    mmm: dict[str, float]
    mmm_weight: dict[str, float]  # 0 = journeys alone, 1 = the MMM alone
    disagreements: list[str] = field(default_factory=list)
    calibrated: list[str] = field(default_factory=list)


def reconcile(causal: Mapping, mmm: MmmShares | None) -> Reconciled:
    """Combine the causal journey model's diagnostics (``run_attribution``) with the MMM's channel shares."""
    shares = {c: float(s) for c, s in causal["shares"].items()}
    interval = causal.get("statistical_interval") or causal.get("share_interval", {})
    level = {c["channel"]: c["level"] for c in causal.get("confounding", [])}
    intent = set(causal.get("intent_channels", []))
    by_key = {c.strip().lower(): c for c in (mmm.share if mmm else {})}
    common = [c for c in shares if c not in intent and c.strip().lower() in by_key]
    out = dict(shares)
    low = {c: float(interval.get(c, [s, s])[0]) for c, s in shares.items()}
    high = {c: float(interval.get(c, [s, s])[1]) for c, s in shares.items()}
    weight = {c: 0.0 for c in shares}
    notes: list[str] = []
    mmm_view: dict[str, float] = {}
    if mmm is not None and len(common) >= 2:
        j_mass = sum(shares[c] for c in common)
        m_mass = sum(mmm.share[by_key[c.strip().lower()]] for c in common)
        if j_mass > 0 and m_mass > 0:
            est_log, est_sd = {}, {}
            for c in common:
                mc = by_key[c.strip().lower()]
                lj = np.log(max(shares[c] / j_mass, LOG_FLOOR))
                sj_stat = interval_log_sd(low[c] / j_mass, high[c] / j_mass)
                sj = np.hypot(sj_stat, BIAS_LOG_SD.get(level.get(c, "unknown"), BIAS_LOG_SD["unknown"]))
                m_share = mmm.share[mc] / m_mass
                lm = np.log(max(m_share, LOG_FLOOR))
                sm = max(interval_log_sd(mmm.low[mc] / m_mass, mmm.high[mc] / m_mass), 1e-3)
                prec = 1 / sj**2 + 1 / sm**2
                est_log[c] = (lj / sj**2 + lm / sm**2) / prec
                est_sd[c] = 1 / np.sqrt(prec)
                weight[c] = float((1 / sm**2) / prec)
                mmm_view[c] = m_share * j_mass
                if abs(lj - lm) > Z90 * np.hypot(sj_stat, sm):
                    why = ("people it reaches already showed intent, so journeys over-credit it"
                           if level.get(c) in {"high", "moderate"} and lj > lm else
                           "the MMM cannot separate it well from channels whose spend moves with it"
                           if sm > 0.5 else "journeys miss part of its effect (views, touches outside the "
                           "lookback, people never tracked)" if lj < lm else "the two models see different things")
                    notes.append(f"{c}: journeys give {shares[c]:.0%} of credit, the MMM {m_share * j_mass:.0%} "
                                 f"(90%: {mmm.low[mc] / m_mass * j_mass:.0%}–{mmm.high[mc] / m_mass * j_mass:.0%}); "
                                 f"likely because {why}.")
            raw = {c: np.exp(v) for c, v in est_log.items()}
            norm = j_mass / sum(raw.values())
            for c in common:
                out[c] = float(raw[c] * norm)
                f = np.exp(Z90 * est_sd[c] * RECONCILED_INTERVAL_SCALE)
                low[c], high[c] = float(out[c] / f), float(min(out[c] * f, 1.0))
    total = sum(out.values())
    if total > 0:
        out = {c: v / total for c, v in out.items()}
    return Reconciled(shares=out, low=low, high=high, journey=shares, mmm=mmm_view, mmm_weight=weight,
                      disagreements=notes, calibrated=common)
