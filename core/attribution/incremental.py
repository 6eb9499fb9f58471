"""Incremental-lift attribution: per-touch lifts fitted by maximum likelihood, credits from counterfactual removal.

Model: a journey with ``n_c`` touches of channel ``c`` converts with probability

    p = 1 − (1 − base) · Π_c (1 − lift_c)^{n_c}

i.e. every touch is an independent extra chance to convert. Writing ``θ_c = −log(1 − lift_c)`` the probability is
``1 − exp(−(θ_0 + n·θ))``; the log-likelihood over converting and non-converting journeys is concave in ``θ ≥ 0``,
so the maximum is unique and found by L-BFGS-B. It needs non-converting journeys (the ``nulls``) — from
conversions alone no incremental effect can be estimated.

A channel's incremental conversions are the expected conversions lost if its touches were removed from every
journey (others unchanged): ``Σ_journeys p − p_without_c``. Credits split the total conversions (revenue) in
proportion to them. Assumptions: touches act independently and do not depend on the customer's prior intent
(whoever was touched would have had the same baseline chance), and the journeys include those that did not convert.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from core.attribution.journeys import PathSet

__all__ = ["fit_lifts", "incremental"]


def _touch_counts(ps: PathSet) -> np.ndarray:
    path_idx, _, chan, _ = ps.flat()
    n_c = len(ps.channels)
    flat = np.bincount(path_idx * n_c + chan, minlength=len(ps.paths) * n_c)
    return flat.reshape(len(ps.paths), n_c).astype(float)


def fit_lifts(ps: PathSet) -> dict:
    """Maximum-likelihood base rate and per-touch lift of every channel."""
    if ps.nulls.sum() <= 0:
        raise ValueError("the incremental model needs journeys that did not convert (nulls); none were given")
    counts = _touch_counts(ps)
    # the likelihood depends on a path only through its touch counts: fit on distinct count vectors
    uniq, inverse = np.unique(counts, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    a = np.bincount(inverse, weights=ps.conversions, minlength=len(uniq))
    b = np.bincount(inverse, weights=ps.nulls, minlength=len(uniq))
    design = np.column_stack([np.ones(len(uniq)), uniq])
    scale = max(float((a + b).sum()), 1.0)

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = np.maximum(design @ theta, 1e-12)
        em1 = np.expm1(eta)
        ll = a * np.log(-np.expm1(-eta)) - b * eta
        d_eta = a / em1 - b
        return -float(ll.sum()) / scale, -(design.T @ d_eta) / scale

    rate = a.sum() / (a.sum() + b.sum())
    mean_touches = float((counts.sum(1) * (ps.conversions + ps.nulls)).sum() / max(scale, 1.0))
    x0 = np.full(design.shape[1], max(-np.log1p(-min(rate, 0.99)) / (mean_touches + 1), 1e-4))
    bounds = [(1e-9, None)] + [(0.0, None)] * counts.shape[1]
    res = minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10})
    theta = res.x
    return {"base": float(-np.expm1(-theta[0])), "lifts": -np.expm1(-theta[1:]), "theta": theta,
            "counts": counts, "converged": bool(res.success), "iterations": int(res.nit)}


def incremental(ps: PathSet) -> tuple[np.ndarray, np.ndarray, dict]:
    """Credits in proportion to each channel's fitted incremental conversions (and revenue)."""
    fit = fit_lifts(ps)
    theta, counts = fit["theta"], fit["counts"]
    eta = theta[0] + counts @ theta[1:]
    p = -np.expm1(-eta)
    journeys = ps.conversions + ps.nulls
    aov_all = ps.total_revenue / ps.total_conversions if ps.total_conversions > 0 else 0.0
    aov = np.divide(ps.revenue, ps.conversions, out=np.full(len(ps.paths), aov_all), where=ps.conversions > 0)
    inc = np.zeros(len(ps.channels))
    inc_rev = np.zeros(len(ps.channels))
    for c in range(len(ps.channels)):
        p_without = -np.expm1(-(eta - counts[:, c] * theta[c + 1]))
        lost = journeys * (p - p_without)
        inc[c] = lost.sum()
        inc_rev[c] = (lost * aov).sum()
    conv = ps.total_conversions * inc / inc.sum() if inc.sum() > 0 else np.zeros_like(inc)
    rev = ps.total_revenue * inc_rev / inc_rev.sum() if inc_rev.sum() > 0 else np.zeros_like(inc_rev)
    diag = {"base_rate": fit["base"], "lifts": fit["lifts"], "incremental_conversions": inc,
            "expected_baseline_conversions": float((journeys * -np.expm1(-theta[0])).sum()),
            "converged": fit["converged"]}
    return conv, rev, diag
