"""One candidate model structure of the MMM and what it predicts: additive or log KPI, carry-over shapes, priors.

A :class:`Spec` holds everything a fit needs besides the nonlinear parameters: the KPI on the scale it is modelled
(revenue, or log revenue for a multiplicative business), the baseline design, observation weights, the demand
multiplier, each channel's carry-over shape and the common ROAS prior. :func:`predict` turns a solution into
fitted values, baseline and per-channel incremental revenue on the KPI's own scale, so the two forms are scored and
reported the same way:

- additive: KPI = baseline + Σ channel effects; a channel's contribution is its own term;
- log: log KPI = log baseline + Σ channel effects (every effect scales with the level of the business: season,
  trend, holidays); a channel's contribution is the revenue lost when its spend is removed,
  ``ŷ·(1 − exp(−effect))``, the same removal counterfactual that defines true incremental revenue.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core.mmm.adstock import carryover
from core.mmm.estimate import Problem, RoasPrior, Solution
from core.mmm.lift import LiftTests
from core.mmm.saturation import hill

__all__ = ["Spec", "Prediction", "media_features", "predict"]

FORMS = ("additive", "log")


@dataclass
class Spec:
    """A model structure: the modelled KPI, baseline design and per-channel choices (see module docs)."""

    form: str
    y: np.ndarray  # the KPI on the modelled scale (revenue or log revenue)
    B: np.ndarray
    bnames: list[str]
    pen: np.ndarray
    x: np.ndarray  # daily-average spend per period (n, C)
    days: float
    scale: np.ndarray  # per channel: mean positive daily spend (half-saturation is relative to it)
    seg: tuple[np.ndarray, np.ndarray]
    stages: np.ndarray  # (C,) 1 = geometric carry-over, k > 1 = delayed peak
    mult: np.ndarray | None = None  # per-period multiplier of every channel's effect (additive form only)
    w_h: np.ndarray | None = None  # heteroscedasticity weights (additive form only)
    sigma2: float | None = None
    roas_prior: RoasPrior | None = None
    smear: float = 1.0  # log form: mean of exp(residual), so exp(fit) is unbiased for the KPI
    lift: LiftTests | None = None  # lift tests as likelihood terms (``core.mmm.lift``)
    lift_value: np.ndarray | None = None  # per-period worth of a unit of feature for them (log form: KPI level)
    demand_g: float = 0.0
    notes: list[str] = field(default_factory=list)

    def problem(self, w: np.ndarray | None = None, y: np.ndarray | None = None, prior: bool = True,
                prior_shift: np.ndarray | None = None, lift_shift: np.ndarray | None = None) -> Problem:
        """The estimation problem for this structure, with optional observation weights and KPI replacement.

        ``prior_shift`` moves each column's ROAS prior mean by that many prior sds: drawn afresh for every
        bootstrap replicate, it makes the replicates sample the prior's uncertainty as well as the data's (for a
        linear-Gaussian model, perturbing data and prior mean this way gives exact posterior draws). ``lift_shift``
        moves each measured lift by that many standard errors, for the same reason."""
        if self.w_h is not None:
            w = self.w_h if w is None else w * self.w_h
        rp = self.roas_prior if prior else None
        if rp is not None and prior_shift is not None:
            rp = replace(rp, shift=prior_shift)
        lift = self.lift
        if lift is not None and lift_shift is not None:
            lift = replace(lift, shift=lift_shift)
        return Problem(self.y if y is None else y, self.B, self.pen, self.x, self.days, self.scale, w=w,
                       sigma2=self.sigma2 if prior else None, segments=self.seg, mult=self.mult,
                       stages=self.stages, roas_prior=rp, lift=lift, lift_value=self.lift_value)

    def with_(self, **kw) -> Spec:
        """A copy with some fields replaced."""
        return replace(self, **kw)


@dataclass
class Prediction:
    """What a solution says, on the KPI's own scale: per period fitted, baseline and channel contributions."""

    fitted: np.ndarray  # (n,)
    baseline: np.ndarray  # (n,)
    contrib: np.ndarray  # (n, C) incremental KPI per channel (removal counterfactual)
    decomposition: np.ndarray  # (n, C) contributions scaled so baseline + Σ = fitted (charts)
    effect: np.ndarray  # (n, C) each channel's term on the modelled scale


def media_features(spec: Spec, sol: Solution) -> np.ndarray:
    """Per channel, the modelled term ``days·m_t·β·hill(carryover(x))`` summed over its efficiency segments (n, C)."""
    n, C = spec.x.shape
    seg_ch, seg_mask = spec.seg
    m = np.ones(n) if spec.mult is None else spec.mult
    out = np.zeros((n, C))
    for k, c in enumerate(seg_ch):
        d, lh, ls = sol.theta[c]
        h = hill(carryover(spec.x[:, c], d, int(spec.stages[c])), np.exp(lh) * spec.scale[c], np.exp(ls))
        out[:, c] += spec.days * sol.beta[k] * h * seg_mask[:, k] * m
    return out


def predict(spec: Spec, sol: Solution) -> Prediction:
    """Fitted KPI, baseline and per-channel incremental KPI for a solution of ``spec``."""
    eff = media_features(spec, sol)
    base = spec.B @ sol.gamma
    if spec.form == "additive":
        return Prediction(base + eff.sum(axis=1), base, eff, eff, eff)
    eta = base + eff.sum(axis=1)
    fitted = spec.smear * np.exp(eta)
    baseline = spec.smear * np.exp(base)
    contrib = fitted[:, None] * (1.0 - np.exp(-eff))
    tot = contrib.sum(axis=1, keepdims=True)
    share = np.divide(contrib, tot, out=np.zeros_like(contrib), where=tot > 0)
    return Prediction(fitted, baseline, contrib, share * (fitted - baseline)[:, None], eff)
