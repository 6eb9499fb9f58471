"""Model health: can the data tell each channel's effect apart, and does the model leave structure unexplained?

Computed once during the fit (``core.mmm.report``) and stored in the artifact's ``health`` block, per channel and
overall, each problem with what to do about it in plain words computed from the data.

Per channel (identifiability):

- how collinear it is with every other channel (the largest |r| of their spends or of their media features, spend
  through the fitted carry-over and curve, and with whom: where the data cannot separate two channels the fit may
  give them different shapes that hide how alike their spends are), with the baseline design (trend, season,
  weekdays, events, controls: the multiple correlation, adjusted for the number of columns) and with all of them at
  once (variance-inflation factor);
- how much its spend varies over time (coefficient of variation per period) and how often it is zero;
- how wide its ROAS interval is relative to the estimate.

A channel is ``identified``, ``weak`` or ``unidentified`` from those (thresholds below). A channel calibrated by a
measured lift test is judged by its interval alone: the experiment separates what the spend history could not.

Overall: residual autocorrelation (lag-1 and a Ljung-Box test: structure the model does not explain, often a
missing price, promotion or distribution driver) and the time-ordered holdout error against the better of two
naive forecasts (same period last year; the mean of the last four weeks before the holdout): a ratio below 1 means
the model forecasts held-out weeks better than naive.

Artifacts written before this block existed load as :func:`unavailable` health.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import chi2

from core.mmm.adstock import carryover
from core.mmm.saturation import hill

if TYPE_CHECKING:
    from core.mmm.report import Fitted

__all__ = ["STATUSES", "ChannelHealth", "Finding", "ModelHealth", "OverallHealth", "health_of", "model_health",
           "unavailable"]

STATUSES = ("identified", "weak", "unidentified", "unavailable")
# ROAS 90% interval width relative to the estimate: above 1 (about ±50%) the channel is weakly identified, above 2
# (about ±100%) the data leave it open
WEAK_WIDTH = 1.0
UNIDENTIFIED_WIDTH = 2.0
COLLINEAR_R = 0.8  # |r| between two channels' media features above which the data separate them poorly
SEVERE_R = 0.95  # ... above which they cannot be separated at all
BASELINE_R = 0.95  # multiple correlation with the baseline design (season, trend, events): R² 0.9, as WEAK_VIF
WEAK_VIF = 10.0  # variance-inflation factor: 90% of the feature's variation explained by the rest of the model
SEVERE_VIF = 30.0
MIN_SPEND_CV = 0.1  # spend whose coefficient of variation is below 10% barely moves: nothing to learn from
MAX_ZERO_SHARE = 0.9  # a channel spending in fewer than 10% of the periods is seen too rarely
RESID_LAG1 = 0.3  # residual lag-1 autocorrelation above this (and Ljung-Box p below LJUNG_BOX_P) is a problem
LJUNG_BOX_P = 0.01
HOLDOUT_RATIO = 1.0  # model holdout error / naive error at or above this: no better than naive
RIDGE = 1e-8  # relative ridge for the auxiliary regressions (near-constant columns)


@dataclass
class Finding:
    """One problem the data show, with the number behind it and what to do about it."""

    kind: str  # collinear | baseline | joint | flat_spend | rarely_on | wide_interval | autocorrelation | holdout
    value: float
    action: str  # what to do, with the reason: "Run a lift test on TikTok: its spend moves with Meta Ads (r = 0.86)"
    detail: str = ""  # the reason alone: "its spend moves with Meta Ads (r = 0.86)"
    other: str | None = None  # the channel it moves with (collinear)


@dataclass
class ChannelHealth:
    """How well the data identify one channel (numbers are None when unavailable)."""

    channel: str
    status: str
    max_corr: float | None = None  # largest |r| of its spend or media feature with another channel's
    max_corr_with: str | None = None
    baseline_corr: float | None = None  # multiple correlation with the baseline design (adjusted)
    vif: float | None = None
    spend_cv: float | None = None
    zero_share: float | None = None
    roas_rel_width: float | None = None  # (high − low) / estimate of the 90% ROAS interval
    spend_share: float | None = None  # of total spend
    calibrated: bool = False  # a measured lift test informs it
    findings: list[Finding] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        """What to do, most important first."""
        return [f.action for f in self.findings]


@dataclass
class OverallHealth:
    """Whether the model as a whole leaves structure unexplained and forecasts better than naive."""

    status: str  # good | caution | unavailable
    residual_lag1: float | None = None
    ljung_box_p: float | None = None
    ljung_box_lags: int | None = None
    residual_sd: float | None = None  # per period, KPI units, at the recent level (the noise a lift test faces)
    holdout_mape: float | None = None
    naive_mape: float | None = None
    naive: str | None = None  # which naive forecast was the better one
    holdout_ratio: float | None = None  # holdout_mape / naive_mape: < 1 beats naive
    holdout_periods: int = 0
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ModelHealth:
    """The artifact's ``health`` block as typed objects."""

    available: bool
    granularity: str
    overall: OverallHealth
    channels: dict[str, ChannelHealth]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the artifact (each channel's actions listed too)."""
        return {"available": self.available, "granularity": self.granularity, "overall": asdict(self.overall),
                "channels": {n: {**asdict(c), "actions": c.actions} for n, c in self.channels.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelHealth:
        """Read the stored block back."""
        def findings(v: Mapping[str, Any]) -> list[Finding]:
            return [Finding(**f) for f in v.get("findings") or []]

        o = dict(d.get("overall") or {})
        overall = OverallHealth(**{**{k: v for k, v in o.items() if k != "findings"}, "findings": findings(o)})
        chans = {}
        for name, c in (d.get("channels") or {}).items():
            fields = {k: v for k, v in c.items() if k not in ("findings", "actions")}
            chans[name] = ChannelHealth(**fields, findings=findings(c))
        return cls(bool(d.get("available")), str(d.get("granularity") or "day"), overall, chans)


def unavailable(channels: list[str], granularity: str = "day") -> ModelHealth:
    """Health of an artifact written before health was computed: nothing known, nothing claimed."""
    return ModelHealth(False, granularity, OverallHealth("unavailable"),
                       {c: ChannelHealth(c, "unavailable") for c in channels})


def health_of(artifact: Mapping[str, Any]) -> ModelHealth:
    """The artifact's health, or :func:`unavailable` for an artifact without the block."""
    block = artifact.get("health")
    gran = str(artifact.get("granularity") or "day")
    if not block or not block.get("available"):
        return unavailable(list(artifact.get("channels") or {}), gran)
    return ModelHealth.from_dict(block)


# --------------------------------------------------------------------------------------------- computing it
def _features(f: Fitted) -> np.ndarray:
    """Each channel's media feature without its coefficient: hill(carry-over(spend)) × the demand multiplier."""
    spec, sol = f.spec, f.sol
    n, C = spec.x.shape
    m = np.ones(n) if spec.mult is None else spec.mult
    out = np.empty((n, C))
    for c in range(C):
        d, lh, ls = sol.theta[c]
        out[:, c] = hill(carryover(spec.x[:, c], d, int(spec.stages[c])), np.exp(lh) * spec.scale[c],
                         np.exp(ls)) * m
    return out


def _r2(y: np.ndarray, X: np.ndarray) -> float:
    """R² of y on X (X holds an intercept), with a tiny ridge so collinear columns do not break the solve."""
    yc = y - y.mean()
    sst = float(yc @ yc)
    if sst <= 0:
        return 1.0
    s = X.std(axis=0)
    s[s == 0] = 1.0
    Z = X / s
    G = Z.T @ Z
    coef = np.linalg.solve(G + RIDGE * np.trace(G) / len(G) * np.eye(len(G)), Z.T @ y)
    r = y - Z @ coef
    return float(np.clip(1.0 - (r @ r) / sst, 0.0, 1.0))


def _adjusted(r2: float, n: int, p: int) -> float:
    return float(np.clip(1.0 - (1.0 - r2) * (n - 1) / max(n - p - 1, 1), 0.0, 1.0))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = a.std(), b.std()
    if sa <= 0 or sb <= 0:
        return 0.0
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def _status(h: ChannelHealth) -> str:
    """identified / weak / unidentified from the interval and, without a lift test, the diagnostics."""
    w = h.roas_rel_width if h.roas_rel_width is not None else np.inf
    if h.calibrated:
        return "identified" if w <= WEAK_WIDTH else "weak" if w <= UNIDENTIFIED_WIDTH else "unidentified"
    severe = (h.max_corr or 0) > SEVERE_R or (h.vif or 0) > SEVERE_VIF
    weak = (severe or (h.max_corr or 0) > COLLINEAR_R or (h.baseline_corr or 0) > BASELINE_R
            or (h.vif or 0) > WEAK_VIF or (h.spend_cv if h.spend_cv is not None else 1) < MIN_SPEND_CV
            or (h.zero_share or 0) > MAX_ZERO_SHARE)
    if w > UNIDENTIFIED_WIDTH or (severe and w > WEAK_WIDTH):
        return "unidentified"
    return "weak" if w > WEAK_WIDTH or weak else "identified"


def _finding(kind: str, value: float, verb: str, detail: str, other: str | None = None) -> Finding:
    return Finding(kind, float(value), f"{verb}: {detail}", detail, other)


def _channel_findings(h: ChannelHealth, roas: tuple[float, float, float], per: str) -> list[Finding]:
    """Each problem of a channel with its action, most telling first."""
    name, out = h.channel, []
    mean, lo, hi = roas
    test = f"Run a lift test on {name}"
    if h.calibrated:
        if (h.roas_rel_width or 0) > WEAK_WIDTH:
            out.append(_finding("wide_interval", h.roas_rel_width or 0, f"Run a longer or larger lift test on {name}",
                                f"with the test measured, its ROAS is still anywhere from {lo:.2f} to {hi:.2f}"))
        return out
    if (h.max_corr or 0) > COLLINEAR_R:
        out.append(_finding("collinear", h.max_corr or 0, test,
                            f"its spend moves with {h.max_corr_with} (r = {h.max_corr:.2f})", h.max_corr_with))
    if (h.baseline_corr or 0) > BASELINE_R:
        out.append(_finding("baseline", h.baseline_corr or 0, test,
                            f"its spend follows the season and trend (r = {h.baseline_corr:.2f})"))
    if (h.vif or 0) > WEAK_VIF and not out:
        share = 1.0 - 1.0 / float(h.vif or 1.0)
        out.append(_finding("joint", h.vif or 0, test, f"the other channels and the baseline together explain "
                                                       f"{share:.0%} of its variation (variance inflation "
                                                       f"{h.vif:.0f})"))
    if h.spend_cv is not None and h.spend_cv < MIN_SPEND_CV:
        owner = f"{name}'" if name.endswith("s") else f"{name}'s"
        out.append(_finding("flat_spend", h.spend_cv, f"Vary {owner} spend",
                            f"it changed by only {h.spend_cv:.0%} over the period"))
    if h.zero_share is not None and h.zero_share > MAX_ZERO_SHARE:
        out.append(_finding("rarely_on", h.zero_share, f"Spend on {name} in more {per}s",
                            f"it spent in only {1 - h.zero_share:.0%} of them"))
    if (h.roas_rel_width or 0) > WEAK_WIDTH and not out:
        out.append(_finding("wide_interval", h.roas_rel_width or 0, test,
                            f"its ROAS could be anywhere from {lo:.2f} to {hi:.2f}"))
    return out


def _autocorr(r: np.ndarray, lags: int) -> np.ndarray:
    r = r - r.mean()
    den = float(r @ r)
    if den <= 0:
        return np.zeros(lags)
    return np.array([float(r[k:] @ r[:-k]) / den for k in range(1, lags + 1)])


def ljung_box(resid: np.ndarray, lags: int) -> tuple[float, float]:
    """Lag-1 autocorrelation and the Ljung-Box p-value of no autocorrelation up to ``lags``."""
    n = len(resid)
    ac = _autocorr(np.asarray(resid, float), lags)
    q = n * (n + 2) * float(np.sum(ac**2 / (n - np.arange(1, lags + 1))))
    return float(ac[0]), float(chi2.sf(q, lags))


def _mape(y: np.ndarray, f: np.ndarray) -> float | None:
    ok = np.isfinite(f) & (np.abs(y) > 1e-9)
    return float(np.mean(np.abs(y[ok] - f[ok]) / np.abs(y[ok]))) if ok.any() else None


def naive_holdout(y: np.ndarray, days: float, h: int) -> tuple[str, float] | None:
    """The better naive forecast of the last ``h`` periods and its MAPE: the same period a year (52 weeks)
    earlier, or the mean of the four weeks before the holdout (per weekday for daily data)."""
    n = len(y)
    if h <= 0 or n - h < 1:
        return None
    actual = y[-h:]
    cands: dict[str, np.ndarray] = {}
    lag = 364 if days == 1 else 52
    if n - h - lag >= 0:
        cands["the same weeks last year"] = y[n - h - lag:n - lag]
    w = int(round(28 / days))
    if n - h - w >= 0:
        past = y[n - h - w:n - h]
        if days == 1:
            cands["the last four weeks' mean"] = np.array([past[(i + w) % 7::7].mean() for i in range(h)])
        else:
            cands["the last four weeks' mean"] = np.full(h, past.mean())
    scores = {k: _mape(actual, v) for k, v in cands.items()}
    scores = {k: v for k, v in scores.items() if v is not None}
    if not scores:
        return None
    best = min(scores, key=scores.get)
    return best, scores[best]


def _overall(f: Fitted) -> OverallHealth:
    prep, spec, pred = f.prep, f.spec, f.pred
    y, fitted = prep.y, pred.fitted
    per = prep.granularity
    resid_kpi = y - fitted
    resid = resid_kpi if spec.form == "additive" else np.log(y / fitted)
    n, C = prep.spend.shape
    lags = int(min(14 if prep.days == 1 else 10, max(n // 5, 1)))
    lag1, p = ljung_box(resid, lags)
    recent = min(n, int(round(365 / prep.days)))
    dof = n / max(n - spec.B.shape[1] - 4 * C, 1)
    sd = float(np.sqrt(np.mean(resid_kpi[-recent:] ** 2) * dof))
    o = OverallHealth("good", residual_lag1=lag1, ljung_box_p=p, ljung_box_lags=lags, residual_sd=sd,
                      holdout_mape=f.mape_holdout, holdout_periods=int(f.holdout_periods))
    nv = naive_holdout(y, prep.days, int(f.holdout_periods)) if f.mape_holdout is not None else None
    if nv is not None and nv[1] > 0:
        o.naive, o.naive_mape = nv
        o.holdout_ratio = float(f.mape_holdout / nv[1])
    if lag1 > RESID_LAG1 and p < LJUNG_BOX_P:
        o.findings.append(_finding("autocorrelation", lag1, "Add a price or promotion column",
                                   f"residuals are autocorrelated (lag-1 {lag1:.2f})"))
    if o.holdout_ratio is not None and o.holdout_ratio >= HOLDOUT_RATIO:
        o.findings.append(_finding(
            "holdout", o.holdout_ratio, "Add the drivers the model is missing (prices, promotions, stock-outs)",
            f"over the last {o.holdout_periods} {per}s it forecast no better than {o.naive} (error "
            f"{o.holdout_mape:.1%} against {o.naive_mape:.1%})"))
    o.status = "caution" if o.findings else "good"
    return o


def model_health(f: Fitted, roas: Mapping[str, tuple[float, float, float]]) -> ModelHealth:
    """Health of a fit: per channel identifiability and overall residual and holdout checks (see module docs).

    ``roas`` holds each channel's (estimate, low, high) of the 90% ROAS interval as the artifact reports it.
    """
    prep, spec = f.prep, f.spec
    n, C = prep.spend.shape
    F = _features(f)
    B = spec.B
    calibrated = set() if spec.lift is None else {prep.channels[int(c)] for c in spec.lift.channel}
    total = float(prep.spend.sum())
    S = prep.spend
    corr = np.array([[max(abs(_corr(F[:, i], F[:, j])), abs(_corr(S[:, i], S[:, j]))) if i != j else 0.0
                      for j in range(C)] for i in range(C)])
    chans: dict[str, ChannelHealth] = {}
    for c, name in enumerate(prep.channels):
        s = prep.spend[:, c]
        mean = float(s.mean())
        j = int(np.argmax(np.abs(corr[c]))) if C > 1 else None
        others = np.delete(F, c, axis=1)
        vif_r2 = _r2(F[:, c], np.column_stack([B, others]))
        r_mean, lo, hi = roas[name]
        h = ChannelHealth(
            name, "identified",
            max_corr=float(abs(corr[c, j])) if j is not None else None,
            max_corr_with=prep.channels[j] if j is not None else None,
            baseline_corr=float(np.sqrt(_adjusted(_r2(F[:, c], B), n, B.shape[1] - 1))),
            vif=float(1.0 / max(1.0 - vif_r2, 1e-9)),
            spend_cv=float(s.std() / mean) if mean > 0 else None,
            zero_share=float(np.mean(s <= 0)),
            roas_rel_width=float((hi - lo) / r_mean) if r_mean > 0 else (0.0 if hi <= 0 else None),
            spend_share=float(s.sum() / total) if total > 0 else None,
            calibrated=name in calibrated)
        h.status = _status(h)
        h.findings = _channel_findings(h, (r_mean, lo, hi), prep.granularity)
        chans[name] = h
    return ModelHealth(True, prep.granularity, _overall(f), chans)
