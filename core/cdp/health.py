"""Customer health: every scored customer in one of three bands by calibrated churn risk, and what each band puts
at stake over the next 12 months.

The band comes from ``churn_risk`` alone (the calibrated probability that the person churns in the next 90 days,
by the target that fits them: cancelling an active subscription, or not ordering again): ``critical`` from
``thresholds.critical``, ``warning`` from ``thresholds.warning``, ``healthy`` below. Value never moves a person
between bands; it decides only how much revenue a band puts at stake (``churn_risk x predicted_ltv``). People who
never ordered have no churn risk (NaN) and are counted as not scored.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["BANDS", "HealthThresholds", "BandSummary", "HealthSummary", "health_band", "summarize_health",
           "churn_risk_values"]

#: the bands, from the best to the worst
BANDS: tuple[str, ...] = ("healthy", "warning", "critical")


@dataclass(frozen=True)
class HealthThresholds:
    """Churn-risk cut-offs (probabilities, 0-1): ``warning`` <= risk < ``critical`` is a warning, from
    ``critical`` up is critical. Raises ``ValueError`` naming the field unless 0 < warning < critical < 1."""

    warning: float = 0.30
    critical: float = 0.60

    def __post_init__(self) -> None:
        for name in ("warning", "critical"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not 0 < v < 1:
                raise ValueError(f"{name}: expected a churn-risk probability strictly between 0 and 1, got {v!r}")
        if not self.warning < self.critical:
            raise ValueError(f"critical: must be above warning ({self.warning!r}), got {self.critical!r}")


def churn_risk_values(frame: pd.DataFrame) -> np.ndarray:
    """``frame.churn_risk`` as floats (NaN = not scored); ``ValueError`` when a value is outside 0-1 (a risk
    given in percent, as rules compare it, would otherwise put everyone in the critical band)."""
    if "churn_risk" not in frame.columns:
        raise ValueError("churn_risk: the frame has no churn_risk column")
    p = pd.to_numeric(frame["churn_risk"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.isfinite(p) & ((p < 0) | (p > 1)) | np.isinf(p)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"churn_risk: expected probabilities from 0 to 1, got {p[i]!r} at row {i + 1} "
                         f"({int(bad.sum())} such rows)")
    return p


def _band_codes(p: np.ndarray, thresholds: HealthThresholds) -> np.ndarray:
    """0 healthy, 1 warning, 2 critical, -1 not scored."""
    codes = np.where(p >= thresholds.critical, 2, np.where(p >= thresholds.warning, 1, 0))
    return np.where(np.isnan(p), -1, codes)


def health_band(frame: pd.DataFrame, thresholds: HealthThresholds | None = None) -> pd.Series:
    """Per row of ``frame``: 'healthy', 'warning' or 'critical' from its churn risk; None when not scored."""
    codes = _band_codes(churn_risk_values(frame), thresholds or HealthThresholds())
    labels = np.array([*BANDS, None], dtype=object)  # code -1 picks the trailing None
    return pd.Series(labels[codes], index=frame.index, name="health", dtype=object)


@dataclass(frozen=True)
class BandSummary:
    """One band (or ``total``, all scored customers). ``revenue_at_stake`` = sum(churn_risk x predicted_ltv);
    ``revenue_at_stake_low/high``: the interval of the realised loss (see :func:`summarize_health`);
    ``predicted_value``: sum of predicted_ltv; ``avg_churn_risk``: mean probability (None when empty)."""

    band: str
    customers: int
    share: float  # of the scored customers (0 when nobody is scored)
    revenue_at_stake: float
    revenue_at_stake_low: float
    revenue_at_stake_high: float
    predicted_value: float
    avg_churn_risk: float | None


@dataclass(frozen=True)
class HealthSummary:
    """The bands of a scored customer frame; ``to_json()`` is JSON-ready (plain numbers, None for undefined)."""

    thresholds: HealthThresholds
    level: float
    customers: int
    scored: int
    unscored: int
    bands: tuple[BandSummary, ...]
    total: BandSummary

    def band(self, name: str) -> BandSummary:
        """The summary of band ``name`` ('healthy', 'warning' or 'critical')."""
        return next(b for b in self.bands if b.band == name)

    def to_json(self) -> dict:
        return {"thresholds": asdict(self.thresholds), "level": self.level, "customers": self.customers,
                "scored": self.scored, "unscored": self.unscored, "bands": [asdict(b) for b in self.bands],
                "total": asdict(self.total)}


def _summarize(name: str, p: np.ndarray, ltv: np.ndarray, n_scored: int, z: float) -> BandSummary:
    stake = p * ltv
    mean = float(stake.sum())
    sd = math.sqrt(float(np.sum(p * (1 - p) * ltv ** 2)))
    most = float(ltv.sum())  # the realised loss is at most everybody's value
    return BandSummary(band=name, customers=len(p), share=len(p) / n_scored if n_scored else 0.0,
                       revenue_at_stake=mean, revenue_at_stake_low=max(mean - z * sd, 0.0),
                       revenue_at_stake_high=min(mean + z * sd, most), predicted_value=most,
                       avg_churn_risk=float(p.mean()) if len(p) else None)


def summarize_health(frame: pd.DataFrame, thresholds: HealthThresholds | None = None,
                     level: float = 0.9) -> HealthSummary:
    """Customers, share of the scored, revenue at stake, predicted 12-month value and mean churn risk per band.

    Revenue at stake is ``sum(churn_risk x predicted_ltv)`` over the band (a missing predicted_ltv counts 0).
    Its interval (``level``, default 90%) is the spread of the *realised* loss if each person churned
    independently with probability ``churn_risk`` and then lost exactly ``predicted_ltv``: a normal
    approximation of the sum with ``var = sum p (1 - p) ltv^2``, clipped to [0, the band's predicted value].
    It does not include model error: a miscalibrated churn risk, the uncertainty of predicted_ltv itself, or
    churn that moves together across customers (e.g. a price change) would all widen it."""
    if not 0 < level < 1:
        raise ValueError(f"level: expected a probability strictly between 0 and 1, got {level!r}")
    thresholds = thresholds or HealthThresholds()
    p = churn_risk_values(frame)
    if "predicted_ltv" not in frame.columns:
        raise ValueError("predicted_ltv: the frame has no predicted_ltv column")
    ltv = pd.to_numeric(frame["predicted_ltv"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ltv = np.where(np.isfinite(ltv), ltv, 0.0)
    codes = _band_codes(p, thresholds)
    scored = codes >= 0
    n_scored = int(scored.sum())
    z = float(stats.norm.ppf(0.5 + level / 2))
    bands = tuple(_summarize(name, p[codes == i], ltv[codes == i], n_scored, z) for i, name in enumerate(BANDS))
    return HealthSummary(thresholds=thresholds, level=level, customers=len(frame), scored=n_scored,
                         unscored=len(frame) - n_scored, bands=bands,
                         total=_summarize("total", p[scored], ltv[scored], n_scored, z))
