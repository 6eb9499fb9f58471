"""What journeys cannot know: a confounding check per channel, intent signals, and small-sample warnings.

Journeys show who was touched and who bought, not why they were touched. When a channel reaches people who already
meant to buy (email lists of past buyers, retargeting, affiliates at checkout), its touches go with purchases that
would have happened anyway. The check measures it with what the journeys do show about intent — the history
columns and the intent channels' visits (direct, brand search, organic):

* **balance**: the standardised mean difference of each intent signal between journeys the channel touched and those
  it did not (|SMD| ≥ 0.25 is large in the causal-inference literature, ≥ 0.1 noticeable);
* **adjustment**: the channel's conversion-rate ratio (touched vs not) raw and within strata of the same observed
  signals (Mantel–Haenszel). When holding the observed signals fixed shrinks the ratio a lot, intent the journeys do
  not record is likely to bias the credit the same way.

Neither proves confounding or its absence; a high level means "calibrate this channel with the marketing mix model
or a holdout test before acting on its journey credit".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.attribution.causal import CausalFit
from core.attribution.touches import TouchTable

__all__ = ["ChannelConfounding", "confounding_check", "causal_diagnostics", "honest_interval", "interval_log_sd",
           "SMD_HIGH", "SMD_NOTICEABLE", "MIN_CONVERSIONS", "Z90", "LOG_FLOOR"]

SMD_HIGH = 0.25
SMD_NOTICEABLE = 0.10
RATIO_SHRINK_HIGH = 1.5  # raw risk ratio / adjusted risk ratio
RATIO_SHRINK_NOTICEABLE = 1.2
# log-sd added to a journey share's statistical interval by confounding level, so that the reported 90% interval
# holds the truth at about its stated rate on the 60-world sweep (statistical intervals alone: 46%)
INTERVAL_BIAS_LOG_SD = {"low": 0.4, "moderate": 0.6, "high": 1.3, "unknown": 0.3}
Z90 = 1.6448536269514722  # the standard normal's 95% point: a 90% interval is ±Z90 sd
LOG_FLOOR = 1e-4  # shares below this count as this on the log scale
MIN_CONVERSIONS = 100  # converting journeys a channel touched, below which its share is flagged as small-sample


@dataclass
class ChannelConfounding:
    """The check for one credited channel."""

    channel: str
    level: str  # "high", "moderate", "low" or "unknown" (no intent signal in the journeys)
    smd: float | None  # the intent signal with the largest |SMD|
    signal: str | None
    raw_ratio: float | None
    adjusted_ratio: float | None
    touched_conversions: int
    message: str | None


def _signals(tt: TouchTable, fit: CausalFit, in_window: np.ndarray) -> dict[str, np.ndarray]:
    """Raw intent signals per journey: intent-channel visit counts and the history columns."""
    out = {}
    for name in fit.signal_channels:
        c = tt.channels.index(name)
        sel = in_window & (tt.channel == c)
        out[f"{name} visits"] = np.bincount(tt.journey[sel], minlength=tt.n_journeys).astype(float)
    for name, values in tt.history.items():
        out[name.replace("_", " ")] = values.astype(float)
    return out


def _strata(signals: dict[str, np.ndarray]) -> np.ndarray:
    """Strata of journeys with the same observed intent: each signal cut at 0, 1, 2+ (or its quartiles)."""
    key = np.zeros(len(next(iter(signals.values()))), dtype=np.int64)
    for values in signals.values():
        uniq = np.unique(values)
        if len(uniq) <= 4:
            bins = np.searchsorted(uniq, values)
        else:
            cuts = np.unique(np.quantile(values, [0.25, 0.5, 0.75]))
            bins = np.searchsorted(cuts, values, side="right")
        key = key * 5 + np.minimum(bins, 4)
    return np.unique(key, return_inverse=True)[1].ravel()


def _mh_ratio(exposed: np.ndarray, y: np.ndarray, strata: np.ndarray) -> float | None:
    """Mantel–Haenszel risk ratio of conversion, touched vs not, within strata."""
    n_s = strata.max() + 1
    n1 = np.bincount(strata, weights=exposed, minlength=n_s)
    n0 = np.bincount(strata, weights=~exposed, minlength=n_s)
    a = np.bincount(strata, weights=exposed & y, minlength=n_s)
    c = np.bincount(strata, weights=~exposed & y, minlength=n_s)
    n = n1 + n0
    ok = (n1 > 0) & (n0 > 0)
    num = (a * n0 / np.where(n > 0, n, 1))[ok].sum()
    den = (c * n1 / np.where(n > 0, n, 1))[ok].sum()
    return float(num / den) if den > 0 and num > 0 else None


def confounding_check(tt: TouchTable, fit: CausalFit) -> list[ChannelConfounding]:
    """Balance and adjustment of every credited channel against the intent signals the journeys carry."""
    y = tt.converted.astype(bool)
    window = fit.spec.window
    in_window = np.ones(len(tt.age_days), dtype=bool) if window is None else tt.age_days <= window
    signals = _signals(tt, fit, in_window)
    visits = {f"{name} visits" for name in fit.signal_channels}
    n_touches = np.bincount(tt.journey[in_window], minlength=tt.n_journeys).astype(float)
    strata = _strata(signals) if signals else None
    out = []
    for c, name in enumerate(tt.channels):
        if name in fit.intent:
            continue
        sel = in_window & (tt.channel == c)
        exposed = np.zeros(tt.n_journeys, dtype=bool)
        exposed[tt.journey[sel]] = True
        touched_conv = int((exposed & y).sum())
        small = (f"Only {touched_conv:,} purchases had a {name} touch: its share is uncertain."
                 if touched_conv < MIN_CONVERSIONS else None)
        if not signals or exposed.all() or not exposed.any():
            out.append(ChannelConfounding(name, "unknown", None, None, None, None, touched_conv, small))
            continue
        best, best_name = 0.0, None
        others = np.maximum(n_touches - np.bincount(tt.journey[sel], minlength=tt.n_journeys), 1.0)
        for sname, v in signals.items():
            if sname == f"{name} visits":
                continue
            # visits as a share of the journey's other touches: a touch of the channel taking the place of a
            # visit must not read as "less intent"
            v = v / others if sname in visits else v
            e, u = v[exposed], v[~exposed]
            pooled = np.sqrt((e.var() + u.var()) / 2)
            smd = float((e.mean() - u.mean()) / pooled) if pooled > 0 else 0.0
            if abs(smd) > abs(best) or best_name is None:
                best, best_name = smd, sname
        r1, r0 = y[exposed].mean(), y[~exposed].mean()
        raw = float(r1 / r0) if r0 > 0 and r1 > 0 else None
        adj = _mh_ratio(exposed, y, strata)
        shrink = raw / adj if raw and adj else 1.0
        shrink = max(shrink, 1 / shrink) if shrink > 0 else 1.0
        if abs(best) >= SMD_HIGH or shrink >= RATIO_SHRINK_HIGH:
            level = "high"
        elif abs(best) >= SMD_NOTICEABLE or shrink >= RATIO_SHRINK_NOTICEABLE:
            level = "moderate"
        else:
            level = "low"
        message = small
        if level != "low":
            more = best > 0
            message = (f"People {name} reached already showed {'more' if more else 'less'} intent than others "
                       f"({best_name}: standardised difference {best:+.2f}"
                       + (f"; holding it fixed moves {name}'s conversion ratio from {raw:.2f}× to {adj:.2f}×"
                          if raw and adj else "")
                       + f"). Intent the journeys do not record probably {'inflates' if more else 'hides'} part of "
                       "its credit the same way: check it against the marketing mix model or a holdout test.")
            if small:
                message += " " + small
        out.append(ChannelConfounding(name, level, best, best_name, raw, adj, touched_conv, message))
    return out


def interval_log_sd(low: float, high: float) -> float:
    """The log-scale sd a 90% interval [low, high] implies."""
    return (np.log(max(high, LOG_FLOOR)) - np.log(max(low, LOG_FLOOR))) / (2 * Z90)


def honest_interval(share: float, low: float, high: float, level: str | None) -> list[float]:
    """The statistical 90% interval widened on the log scale by the bias allowance of the confounding level."""
    if share <= 0:
        return [float(low), float(high)]
    bias = INTERVAL_BIAS_LOG_SD.get(level or "unknown", INTERVAL_BIAS_LOG_SD["unknown"])
    sd = np.hypot(interval_log_sd(low, high), bias)
    f = np.exp(Z90 * sd)
    return [float(share / f), float(min(share * f, 1.0))]


def causal_diagnostics(fit: CausalFit, check: list[ChannelConfounding]) -> dict:
    """The causal model's choices, intervals and checks as JSON for the API.

    ``share_interval`` is the honest 90% interval (statistical and confounding allowance);
    ``statistical_interval`` the parameter uncertainty alone, which the reconciliation combines with its own
    allowance.
    """
    shares = fit.shares
    level = {c.channel: c.level for c in check}
    expected = max(fit.expected_conversions, 1e-12)
    return {
        "assumptions": fit.spec.describe(),
        "heldout_gain_per_journey": {k: float(v) for k, v in fit.heldout_gain.items()},
        "candidates_compared": fit.candidates,
        "intent_channels": list(fit.intent),
        "signal_channels": list(fit.signal_channels),
        "intent_signals": list(fit.intent_columns),
        "baseline_share": float(fit.baseline_conversions / expected),
        "incremental_conversions": dict(zip(fit.channels, map(float, fit.incremental), strict=True)),
        "statistical_interval": {c: [float(lo), float(hi)] for c, lo, hi in
                                 zip(fit.channels, fit.share_low, fit.share_high, strict=True)},
        "share_interval": {c: honest_interval(float(s), float(lo), float(hi), level.get(c)) for c, s, lo, hi in
                           zip(fit.channels, shares, fit.share_low, fit.share_high, strict=True)},
        "shares": dict(zip(fit.channels, map(float, shares), strict=True)),
        "sample_journeys": fit.sample_journeys,
        "confounding": [c.__dict__ for c in check],
    }
