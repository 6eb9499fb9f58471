"""Uncertainty for the MMM by a block-weighted (Bayesian) bootstrap over time.

Each replicate re-weights contiguous blocks of periods (4 weeks) with Dirichlet weights and refits the whole model
(nonlinear parameters included, warm-started at the point estimate). Re-weighting keeps the time order intact, so
carry-over is computed exactly as in the data, while blocks keep residual autocorrelation inside a block. Where the
data cannot separate two channels (collinear spends), replicates trade their effects against each other and the
intervals widen accordingly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.mmm.estimate import Bounds, Problem, Solution, box, fit_problem

__all__ = ["block_weights", "block_residuals", "bootstrap"]


def block_residuals(rng: np.random.Generator, resid: np.ndarray, block: int) -> np.ndarray:
    """Moving-block resample of residuals (keeps their autocorrelation within blocks), same length."""
    n = len(resid)
    block = max(1, min(block, n))
    starts = rng.integers(0, n - block + 1, int(np.ceil(n / block)))
    return np.concatenate([resid[s:s + block] for s in starts])[:n]


def block_weights(rng: np.random.Generator, n: int, block: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Dirichlet(1,…,1) weight per block of ``block`` periods, scaled so weights average 1; masked periods get 0."""
    nb = int(np.ceil(n / block))
    g = rng.gamma(1.0, 1.0, nb)
    w = np.repeat(g / g.mean(), block)[:n]
    if mask is not None:
        w = w * mask
    return w * (mask.sum() if mask is not None else n) / max(w.sum(), 1e-12)


def _hessian(prob: Problem, z0: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Hessian of the profiled objective at z0 by central differences of the analytic gradient, made positive
    definite (eigenvalue floor) so that Newton steps are always descent directions."""
    k = len(z0)
    H = np.empty((k, k))
    for i in range(k):
        h = 1e-4 * max(1.0, hi[i] - lo[i])
        zp, zm = z0.copy(), z0.copy()
        zp[i] += h
        zm[i] -= h
        H[:, i] = (prob.objective(zp)[1] - prob.objective(zm)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    lam, V = np.linalg.eigh(H)
    lam = np.maximum(lam, max(lam.max(), 1e-12) * 1e-4)
    return (V * lam) @ V.T


def _chord_newton(prob: Problem, z0: np.ndarray, H0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  iters: int = 10) -> np.ndarray | None:
    """Refit a replicate by quasi-Newton steps that start from the point estimate's Hessian (a replicate is a small
    perturbation of the data: its optimum is near and its curvature similar) and refine it by BFGS updates, with
    parameters held at a bound by their gradient kept there. A handful of objective evaluations instead of dozens.
    Returns None when no descent is found (the caller falls back to L-BFGS-B)."""
    Hinv = np.linalg.inv(H0)
    z = z0.copy()
    f, g = prob.objective(z)
    f_start = f
    for _ in range(iters):
        free = ~(((z <= lo + 1e-12) & (g > 0)) | ((z >= hi - 1e-12) & (g < 0)))
        step = np.where(free, -(Hinv @ np.where(free, g, 0.0)), 0.0)
        t = 1.0
        while t > 0.05:
            zn = np.clip(z + t * step, lo, hi)
            fn, gn = prob.objective(zn)
            if fn <= f:
                break
            t *= 0.5
        else:
            break  # no descent along the quasi-Newton direction: stop here
        sv, yv = zn - z, gn - g
        sy = float(sv @ yv)
        if sy > 1e-12:
            rho = 1.0 / sy
            V = np.eye(len(z)) - rho * np.outer(sv, yv)
            Hinv = V @ Hinv @ V.T + rho * np.outer(sv, sv)
        done = f - fn <= 1e-7 * max(abs(f), 1e-12) or np.max(np.abs(sv)) < 1e-3
        z, f, g = zn, fn, gn
        if done:
            return z
    return z if f < f_start else None


def bootstrap(make_problem: Callable[[np.ndarray, np.ndarray, int | None], Problem], n: int, point: Solution,
              bounds: Bounds,
              n_boot: int, block: int, seed: int, fitted: np.ndarray, resid: np.ndarray,
              progress: Callable[[int], None] | None = None, resid_scale: np.ndarray | None = None
              ) -> list[Solution]:
    """``n_boot`` refits; ``make_problem(y, weights, replicate)`` builds a problem (replicate None: the point's own
    data, for the curvature; a replicate number lets the caller perturb the priors of that replicate).

    Each replicate combines both sources of variation: block-resampled residuals added to the fitted values (noise)
    and block Dirichlet weights (which periods drive the fit). ``resid`` should already be scaled up for the degrees
    of freedom the fit used. ``resid_scale`` (per period) is the residuals' relative spread where it varies with the
    KPI's level: residuals are resampled on the standardised scale and scaled back to each period's own spread.
    """
    rng = np.random.default_rng(seed)
    out: list[Solution] = []
    z0 = point.theta.ravel()
    lo, hi = (np.array(v) for v in zip(*box(len(point.theta), bounds), strict=True))
    H0 = _hessian(make_problem(fitted, np.ones(n), None), z0, lo, hi) if n_boot else None
    for b in range(n_boot):
        w = block_weights(rng, n, block)
        if resid_scale is None:
            ystar = fitted + block_residuals(rng, resid, block)
        else:
            ystar = fitted + resid_scale * block_residuals(rng, resid / resid_scale, block)
        prob = make_problem(ystar, w, b)
        z = _chord_newton(prob, z0, H0, lo, hi)
        out.append(prob.solution(z) if z is not None else fit_problem(prob, bounds, [z0], maxiter=25, tol=1e-8))
        if progress is not None:
            progress(b)
    return out
