"""Causal journey model: touch effects that fade, repeats that diminish, intent held fixed; chosen by held-out fit.

It generalises the incremental-lift model. A journey converts with probability

    hazard link:   p = 1 − exp(−(b · exp(β·z) + θ·x))        logistic link:  p = σ(a + β·z + θ·x)

where ``x`` holds each credited channel's touches weighted by age and repeat (:mod:`core.attribution.causal_design`),
``z`` the person's intent signals (history columns, direct/brand-search/organic visits) and ``θ ≥ 0`` the effects.
The assumptions (window, half-life, repeat factor, link) are chosen by coordinate search on the log-likelihood of
held-out journeys, starting from the plain incremental model. A channel's credit is the expected conversions lost
when its touches are removed from every journey (intent and other touches unchanged).

Fits run on a case-control sample (every converting journey, a weighted random share of the others), which keeps a
million journeys to a few hundred thousand rows without biasing the weighted likelihood. Draws from the sandwich
covariance of the weighted estimate give each share's 90% interval (the assumptions are taken as chosen, so the
interval does not include the uncertainty of the choice). What it cannot know: intent that leaves no trace in the
journeys (no history column, no intent-channel visit) still looks like an effect of whatever channels reach
high-intent people; :mod:`core.attribution.confounding` checks for it and the MMM calibration corrects it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from core.attribution.causal_design import Design, Spec, build_design, intent_channels
from core.attribution.touches import TouchTable

__all__ = ["CausalFit", "fit_causal", "SAMPLE_NULLS_PER_CONVERSION", "N_DRAWS", "HALF_LIVES", "REPEATS"]

SAMPLE_NULLS_PER_CONVERSION = 4  # non-converting journeys kept per converting one in the case-control sample
MIN_SAMPLE_NULLS = 40_000
MAX_SAMPLE_CONVERSIONS = 30_000  # beyond this, converting journeys are sampled too (weighted)
SELECT_MAX = 40_000  # journeys of the sample the assumptions are chosen on (70% fit, 30% held out)
HOLDOUT_SHARE = 0.3
HALF_LIVES: tuple[float | None, ...] = (None, 30.0, 14.0, 7.0, 3.0, 1.0)
REPEATS: tuple[float, ...] = (1.0, 0.7, 0.5, 0.3)
LINKS = ("hazard", "logistic")
INTENT_ROLES = ("signal", "both", "channel")
N_DRAWS = 100
INTERVAL = (5.0, 95.0)


@dataclass
class CausalFit:
    """The chosen model, its credits and what it needed."""

    channels: list[str]  # all channels (credit 0 for intent channels)
    spec: Spec
    incremental: np.ndarray  # expected conversions lost without each channel, on all journeys
    share_low: np.ndarray  # 90% interval of each channel's share of incremental conversions
    share_high: np.ndarray
    intent: list[str]  # intent channels given no credit
    signal_channels: list[str]  # channels whose visits enter as intent signals
    intent_columns: list[str]
    baseline_conversions: float
    expected_conversions: float
    heldout_gain: dict[str, float]  # held-out log-likelihood per journey gained by each chosen assumption
    candidates: int
    sample_journeys: int
    n_draws: int

    @property
    def shares(self) -> np.ndarray:
        total = self.incremental.sum()
        return self.incremental / total if total > 0 else np.zeros_like(self.incremental)


# ------------------------------------------------------------------------------------------------ likelihood
def _unpack(params: np.ndarray, k: int) -> tuple[float, np.ndarray, np.ndarray]:
    return params[0], params[1:1 + k], params[1 + k:]


def _baseline(params: np.ndarray, d: Design) -> np.ndarray:
    """The hazard link's chance-to-buy-without-marketing term ``b·e^{β·z}`` per journey."""
    a, beta, _ = _unpack(params, d.Z.shape[1])
    return np.exp(np.clip(a + d.Z @ beta, -30, 30))


def _prob(params: np.ndarray, d: Design, link: str, X: np.ndarray | None = None) -> np.ndarray:
    a, beta, theta = _unpack(params, d.Z.shape[1])
    X = d.X if X is None else X
    if link == "hazard":
        return -np.expm1(-(_baseline(params, d) + X @ theta))
    return expit(a + d.Z @ beta + X @ theta)


def _terms(params: np.ndarray, d: Design, w: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per journey: weighted log-likelihood, its derivative by the intercept (by β: × z) and by θ (× x)."""
    a, beta, theta = _unpack(params, d.Z.shape[1])
    y = d.y
    if link == "hazard":
        b = _baseline(params, d)
        eta = np.maximum(b + d.X @ theta, 1e-12)
        ll = w * (y * np.log(-np.expm1(-eta)) - (1 - y) * eta)
        g = w * (y / np.expm1(np.minimum(eta, 700.0)) - (1 - y))
        return ll, g * b, g  # d eta / d(intercept, beta) = b · (1, z)
    u = a + d.Z @ beta + d.X @ theta
    g = w * (y - expit(u))
    return w * (y * u - np.logaddexp(0.0, u)), g, g


def _nll(params: np.ndarray, d: Design, w: np.ndarray, link: str) -> tuple[float, np.ndarray]:
    ll, gi, g = _terms(params, d, w, link)
    scale = w.sum()
    return -float(ll.sum()) / scale, -np.concatenate([[gi.sum()], d.Z.T @ gi, d.X.T @ g]) / scale


def _scores(params: np.ndarray, d: Design, w: np.ndarray, link: str) -> np.ndarray:
    """Per-journey weighted score vectors (gradient of each journey's log-likelihood), for the sandwich."""
    _, gi, g = _terms(params, d, w, link)
    return np.column_stack([gi, d.Z * gi[:, None], d.X * g[:, None]])


def _fit(d: Design, w: np.ndarray, link: str, x0: np.ndarray | None = None, ftol: float = 1e-11) -> np.ndarray:
    k, f = d.Z.shape[1], d.X.shape[1]
    if x0 is None:
        rate = float((w * d.y).sum() / w.sum())
        rate = min(max(rate, 1e-6), 0.99)
        a0 = np.log(-np.log1p(-rate)) if link == "hazard" else np.log(rate / (1 - rate))
        t0 = 1e-3 if link == "hazard" else 0.05
        x0 = np.concatenate([[a0], np.zeros(k), np.full(f, t0)])
    bounds = [(-30.0, 30.0)] + [(-10.0, 10.0)] * k + [(0.0, None)] * f
    res = minimize(_nll, x0, args=(d, w, link), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 500, "ftol": ftol, "gtol": 1e-7})
    return res.x


def _lost(params: np.ndarray, d: Design, link: str, w: np.ndarray) -> np.ndarray:
    """Expected conversions lost when each credited channel's touches are removed (weighted sum over journeys).

    Vectorised over channels: a channel's part of the linear predictor is removed at once for every journey.
    """
    a, beta, theta = _unpack(params, d.Z.shape[1])
    member = np.zeros((d.X.shape[1], len(d.groups)))
    for g, cols in enumerate(d.groups):
        member[cols, g] = 1.0
    part = d.X @ (theta[:, None] * member)  # each channel's part of the linear predictor
    if link == "hazard":
        eta = _baseline(params, d) + part.sum(1)
        lost = np.exp(-eta)[:, None] * np.expm1(part)  # p − p_without = e^{−η}(e^{part} − 1)
    else:
        u = a + d.Z @ beta + part.sum(1)
        lost = expit(u)[:, None] - expit(u[:, None] - part)
    return np.maximum(w @ lost, 0.0)


def _covariance(params: np.ndarray, d: Design, w: np.ndarray, link: str) -> np.ndarray:
    """Sandwich covariance H⁻¹ J H⁻¹ of the weighted maximum-likelihood estimate (right under case-control weights)."""
    scale = w.sum()

    def grad(x: np.ndarray) -> np.ndarray:
        return _nll(x, d, w, link)[1] * scale

    k = len(params)
    H = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(params[j]))
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (grad(params + e) - grad(params - e)) / (2 * h)
    H = (H + H.T) / 2
    S = _scores(params, d, w, link)
    Hi = np.linalg.pinv(H)
    return Hi @ (S.T @ S) @ Hi


# ------------------------------------------------------------------------------------------------ selection
def _sample(tt: TouchTable, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Case-control sample: every converting journey and a random share of the others, with weights."""
    conv = np.flatnonzero(tt.converted)
    nulls = np.flatnonzero(~tt.converted)
    n_conv = min(len(conv), MAX_SAMPLE_CONVERSIONS)
    want = max(SAMPLE_NULLS_PER_CONVERSION * n_conv, MIN_SAMPLE_NULLS)
    if want >= len(nulls) and n_conv == len(conv):
        return np.arange(tt.n_journeys), np.ones(tt.n_journeys)
    want = min(want, len(nulls))
    picked_c = conv if n_conv == len(conv) else rng.choice(conv, size=n_conv, replace=False)
    picked = rng.choice(nulls, size=want, replace=False)
    idx = np.concatenate([picked_c, picked])
    w = np.concatenate([np.full(n_conv, len(conv) / n_conv), np.full(want, len(nulls) / want)])
    order = np.argsort(idx)
    return idx[order], w[order]


def _heldout_ll(tt: TouchTable, spec: Spec, intent: list[int], w: np.ndarray, train: np.ndarray,
                x0: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Log-likelihood per held-out journey of ``spec`` fitted on the training journeys (and the fitted params)."""
    d = build_design(tt, spec, intent)
    params = _fit(_rows(d, train), w[train], spec.link, x0=x0 if x0 is not None and len(x0) == 1 + d.Z.shape[1]
                  + d.X.shape[1] else None, ftol=1e-9)
    test = ~train
    p = np.clip(_prob(params, _rows(d, test), spec.link), 1e-12, 1 - 1e-12)
    y = d.y[test]
    return float((w[test] * (y * np.log(p) + (1 - y) * np.log1p(-p))).sum() / w[test].sum()), params


def _rows(d: Design, mask: np.ndarray) -> Design:
    return Design(X=d.X[mask], Z=d.Z[mask], groups=d.groups, credited=d.credited, intent_names=d.intent_names,
                  y=d.y[mask], z_stats=d.z_stats)


def _select(tt: TouchTable, intent: list[int], w: np.ndarray, train: np.ndarray,
            lookback: float | None) -> tuple[Spec, dict[str, float], int, np.ndarray]:
    """Coordinate search over the assumptions, each step kept only if held-out likelihood improves."""
    start = Spec(window=lookback, half_life=None, repeat=1.0, link="hazard", intent_role="signal")
    cache: dict[Spec, tuple[float, np.ndarray]] = {}
    best = start

    def score(s: Spec) -> float:
        if s not in cache:  # warm start from the current best when the parameters mean the same (same link)
            x0 = cache[best][1] if best in cache and best.link == s.link else None
            cache[s] = _heldout_ll(tt, s, intent, w, train, x0)
        return cache[s][0]

    windows = [lookback] if lookback is None else [lookback, None]
    axes = {"half_life": HALF_LIVES, "repeat": REPEATS, "window": windows, "link": LINKS, "synergy": (False, True)}
    if intent:
        axes["intent_role"] = INTENT_ROLES
    for _ in range(2):
        changed = False
        for axis, values in axes.items():
            for v in values:
                cand = replace(best, **{axis: v})
                if score(cand) > score(best) + 1e-7:
                    best, changed = cand, True
        if not changed:
            break
    gains = {}
    for axis in axes:  # what each chosen assumption is worth: held-out gain over the starting assumption
        reverted = replace(best, **{axis: getattr(start, axis)})
        gains[axis] = score(best) - score(reverted) if reverted != best else 0.0
    score(best)
    return best, gains, len(cache), cache[best][1]


# ------------------------------------------------------------------------------------------------ entry point
def fit_causal(tt: TouchTable, lookback_days: float | None = 30.0, *, n_draws: int = N_DRAWS, seed: int = 0,
               intent: list[str] | None = None) -> CausalFit:
    """Choose the assumptions on held-out journeys, fit, credit by removal and give the shares intervals.

    BLAS runs single-threaded here: the products are thin (rows × a dozen columns), and a threaded BLAS spent
    six times the CPU on thread hand-offs (16 vs 2.5 CPU s on a 250,000-journey world, 2 cores under load).
    """
    with threadpool_limits(1):
        return _fit_causal(tt, lookback_days, n_draws=n_draws, seed=seed, intent=intent)


def _fit_causal(tt: TouchTable, lookback_days: float | None, *, n_draws: int, seed: int,
                intent: list[str] | None) -> CausalFit:
    if tt.converted.all() or not tt.converted.any():
        raise ValueError("the causal model needs journeys that converted and journeys that did not")
    rng = np.random.default_rng(seed)
    intent_names = intent_channels(tt.channels) if intent is None else [c for c in intent if c in tt.channels]
    intent_idx = [tt.channels.index(c) for c in intent_names]
    if len(intent_idx) == len(tt.channels):
        raise ValueError("every channel is an intent signal (direct, brand search, organic): nothing to credit")
    idx, w = _sample(tt, rng)
    st = tt.subset(idx)
    sel = np.arange(st.n_journeys) if st.n_journeys <= SELECT_MAX else \
        np.sort(rng.choice(st.n_journeys, SELECT_MAX, replace=False))
    sst = st.subset(sel)
    train = rng.random(sst.n_journeys) >= HOLDOUT_SHARE
    spec, gains, n_cand, x0 = _select(sst, intent_idx, w[sel], train, lookback_days)

    d = build_design(st, spec, intent_idx)
    params = _fit(d, w, spec.link, x0=x0)  # warm start from the chosen candidate's fit
    full = build_design(tt, spec, intent_idx, z_stats=d.z_stats)  # standardised like the fitted sample
    ones = np.ones(tt.n_journeys)
    lost = _lost(params, full, spec.link, ones)
    p_all = _prob(params, full, spec.link)
    p_base = _prob(params, full, spec.link, np.zeros_like(full.X))

    # parameter uncertainty → share intervals: draws from the sandwich covariance, effects kept non-negative
    boot = []
    if n_draws:
        cov = _covariance(params, d, w, spec.link)
        draws = rng.multivariate_normal(params, cov, size=n_draws, method="eigh", check_valid="ignore")
        n_theta = d.X.shape[1]
        draws[:, -n_theta:] = np.maximum(draws[:, -n_theta:], 0.0) if n_theta else draws[:, -n_theta:]
        ev = np.arange(st.n_journeys) if st.n_journeys <= SELECT_MAX else \
            np.sort(rng.choice(st.n_journeys, SELECT_MAX, replace=False))
        d_ev, w_ev = _rows(d, ev), w[ev]
        for pb in draws:
            lb = _lost(pb, d_ev, spec.link, w_ev)
            boot.append(lb / lb.sum() if lb.sum() > 0 else lb)
    n_ch = len(tt.channels)
    incremental = np.zeros(n_ch)
    incremental[d.credited] = lost
    low, high = np.zeros(n_ch), np.zeros(n_ch)
    if boot:
        lo, hi = np.percentile(np.array(boot), INTERVAL, axis=0)
        low[d.credited], high[d.credited] = lo, hi
    return CausalFit(
        channels=list(tt.channels), spec=spec, incremental=incremental, share_low=low, share_high=high,
        intent=intent_names if spec.intent_role == "signal" else [],
        signal_channels=intent_names if spec.intent_role in {"signal", "both"} else [],
        intent_columns=d.intent_names, baseline_conversions=float(p_base.sum()),
        expected_conversions=float(p_all.sum()), heldout_gain=gains, candidates=n_cand,
        sample_journeys=st.n_journeys, n_draws=n_draws,
    )
