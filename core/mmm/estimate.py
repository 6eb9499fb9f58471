"""Numerical core of the MMM fit: variable projection over per-channel nonlinear parameters.

Model (per period t, channels c): ``y_t = B_t·γ + Σ_c days·m_t·β_c·hill(adstock(x_c)_t; half_c, shape_c) + ε_t`` with
``m_t`` an optional per-period multiplier (media effects that scale with seasonal demand; 1 by default),
``x_c`` the channel's daily-average spend in the period, β_c ≥ 0 the maximum daily incremental KPI, and B the
baseline design (ridge-penalised where asked). For given nonlinear parameters θ = (decay, log half, log shape) per
channel, γ and β have a closed form (ridge projection + a C×C non-negative least squares), so the search runs over θ
alone — 3 numbers per channel — with an exact analytic gradient (envelope theorem), by L-BFGS-B from several starts.
Observation weights let the same code fit a time-ordered holdout (weight 0) and block-bootstrap replicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize, nnls

from core.mmm.adstock import carryover, delayed_adstock_grad
from core.mmm.lift import LiftTests
from core.mmm.saturation import hill, hill_grad

__all__ = ["Bounds", "Problem", "RoasPrior", "Solution", "fit_problem"]

LOG_SHAPE_PRIOR_SD = 0.6  # weak prior: shape around 1 (log-normal, sd 0.6)
LOG_HALF_PRIOR_SD = 1.2  # weak prior: half-saturation around the channel's typical spend
DECAY_PRIOR = (0.3, 0.25)  # weak prior on the carry-over decay per day (mean, sd); per week it is decay**7
WEEKLY_DECAY_PRIOR: tuple[float, float] | None = None  # a prior of its own per week (None: the daily one, per week)


@dataclass
class Bounds:
    decay_max: float
    log_half: tuple[float, float]  # relative to the channel's mean daily spend
    log_shape: tuple[float, float]


@dataclass
class RoasPrior:
    """A common prior on every media column's ROAS: ``ROAS_k ~ Normal(mean, (rel_sd·mean)²)``.

    ROAS_k = β_k · Σ_t v_t·F_tk / spend_k with F the media features, ``spend`` (K,) each column's spend (its segment
    of time) and ``value`` (n,) what one unit of feature is worth per period: 1 for an additive KPI, the fitted KPI
    level for a log KPI (first order of exp(β·F) − 1). Shrinks a channel with thin evidence toward the others
    instead of letting it take zero or a huge value; strong data overrule it.
    """

    mean: float
    rel_sd: float
    spend: np.ndarray
    value: np.ndarray | None = None
    shift: np.ndarray | None = None  # (K,) per-column offset of the mean in sds (a bootstrap replicate's draw)

    def centres(self, K: int) -> np.ndarray:
        """Each column's prior mean: the common mean, moved by ``shift`` sds in a perturbed-prior replicate."""
        z = np.zeros(K) if self.shift is None else np.asarray(self.shift, float)
        return self.mean + self.rel_sd * self.mean * z


@dataclass
class Solution:
    theta: np.ndarray  # (C, 3): decay, log relative half, log shape
    beta: np.ndarray  # (K,) per media column (a channel with an efficiency break has one per period), KPI per day
    gamma: np.ndarray  # baseline coefficients (KPI units)
    objective: float

    def decay(self) -> np.ndarray:
        return self.theta[:, 0]

    def shape(self) -> np.ndarray:
        return np.exp(self.theta[:, 2])


class Problem:
    """Weighted, penalised least squares in (γ, β) profiled over θ."""

    def __init__(self, y: np.ndarray, B: np.ndarray, pen: np.ndarray, x: np.ndarray, days: float,
                 scale: np.ndarray, w: np.ndarray | None = None, ridge: float = 1.0,
                 sigma2: float | None = None, segments: tuple[np.ndarray, np.ndarray] | None = None,
                 mult: np.ndarray | None = None, stages: np.ndarray | None = None,
                 roas_prior: RoasPrior | None = None, lift: LiftTests | None = None,
                 lift_value: np.ndarray | None = None) -> None:
        """``segments`` = (column → channel index (K,), masks (n, K)): a channel whose efficiency changes at a known
        date (e.g. a platform's privacy change) gets one β per period of constant efficiency, sharing its θ.
        ``mult`` (n,) scales every channel's effect per period (media effects that grow with seasonal demand).
        ``stages`` (C,) chooses each channel's carry-over (1 geometric, k > 1 delayed peak); ``roas_prior`` shrinks
        every channel's ROAS toward a common value (a Gaussian prior, so the inner problem stays quadratic).
        ``lift`` adds one Gaussian likelihood term per lift test on the predicted lift over its window, which is
        linear in the tested channel's β; ``lift_value`` (n,) is what a unit of feature is worth per period there (1
        for an additive KPI, the KPI level for a log KPI)."""
        self.n, self.C = x.shape
        self.stages = np.ones(self.C, int) if stages is None else np.asarray(stages, int)
        if segments is None:
            segments = (np.arange(self.C), np.ones((self.n, self.C)))
        self.seg_ch, self.seg_mask = segments
        self.n_cols = len(self.seg_ch)
        self.plain = self.n_cols == self.C and bool(np.all(self.seg_mask == 1.0))
        self.x, self.days, self.scale = x, days, scale  # x: daily-average spend per period; scale: spend units
        self.dm = days * (np.ones((self.n, 1)) if mult is None else np.asarray(mult, float).reshape(-1, 1))
        self.w = np.ones(self.n) if w is None else np.asarray(w, float)
        self.sw = np.sqrt(self.w)
        self.ys_unit = float(np.std(y)) or 1.0
        self.y = y / self.ys_unit
        self.Bsd = B.std(axis=0)
        self.Bsd[self.Bsd == 0] = 1.0
        self.Bsd[pen == 0] = 1.0
        self.B = B / self.Bsd
        self.yw = self.y * self.sw
        self.Bw = self.B * self.sw[:, None]
        lam = ridge * pen * max(self.w.sum(), 1.0) / 100.0
        K = cho_factor(self.Bw.T @ self.Bw + np.diag(lam + 1e-9))
        self.Kinv = cho_solve(K, np.eye(B.shape[1]))  # small (p×p): a matmul per evaluation beats a solve
        self.Bty = self.Bw.T @ self.yw
        self.Ky = cho_solve(K, self.Bty)
        self.c0 = float(self.yw @ self.yw - self.Bty @ self.Ky)
        self.sigma2 = sigma2  # residual variance in unit scale (for the weak prior); None → no prior
        self.n_eff = max(self.w.sum(), 1.0)
        self.roas_prior = roas_prior if (roas_prior is not None and sigma2 is not None
                                         and roas_prior.mean > 0) else None
        self.lift = lift if (lift is not None and sigma2 is not None) else None
        if self.lift is not None:
            v = np.ones(self.n) if lift_value is None else np.asarray(lift_value, float)
            self._lt_v = v * self.ys_unit
            cols = []
            for k, c in enumerate(self.lift.channel):  # the channel's efficiency segment that covers the test most
                ks = np.flatnonzero(self.seg_ch == c)
                cols.append(int(ks[np.argmax([(self.seg_mask[:, j] * self.lift.mask[k]).sum() for j in ks])]))
            self._lt_col = np.array(cols, int)
            self._lt_L = self.lift.measured()
            self._lt_prec = 1.0 / self.lift.se**2
        if self.roas_prior is not None:
            rp = self.roas_prior
            v = np.ones(self.n) if rp.value is None else np.asarray(rp.value, float)
            self._rp_v = v * self.ys_unit / 1.0
            self._rp_spend = np.maximum(np.asarray(rp.spend, float), 1e-12)
            self._rp_prec = 1.0 / (rp.rel_sd * rp.mean) ** 2
            self._rp_mean = rp.centres(self.n_cols)
        m, sd = DECAY_PRIOR  # expressed per period: a week's decay is the day's to the 7th power
        self.decay_prior = (m ** days, max(sd * days * m ** (days - 1), 0.1)) if days > 1 else (m, sd)
        if days > 1 and WEEKLY_DECAY_PRIOR is not None:
            self.decay_prior = WEEKLY_DECAY_PRIOR

    # features ---------------------------------------------------------------------------------------------
    def features(self, theta: np.ndarray, grad: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Media features days·hill(adstock(x)) (n, C) and, with ``grad``, their θ-derivatives (n, C, 3)."""
        n, C = self.n, self.C
        half = np.exp(theta[:, 1]) * self.scale
        shape = np.exp(theta[:, 2])
        A = np.empty((n, C))
        dA = np.empty((n, C)) if grad else None
        for c in range(C):
            if grad:
                A[:, c], dA[:, c] = delayed_adstock_grad(self.x[:, c], theta[c, 0], self.stages[c])
            else:
                A[:, c] = carryover(self.x[:, c], theta[c, 0], self.stages[c])
        if not grad:
            return self.dm * hill(A, half, shape), None
        h, hx, hh, hs = hill_grad(A, half, shape)
        dH = np.empty((n, C, 3))
        dH[:, :, 0] = self.dm * hx * dA
        dH[:, :, 1] = self.dm * hh * half
        dH[:, :, 2] = self.dm * hs * shape
        return self.dm * h, dH

    def lift_features(self, theta: np.ndarray, H: np.ndarray, dH: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per lift test, G_k: the predicted lift per unit of (unit-scale) β — the change of the channel's feature over
        the read-out window when its spend moves as in the test, valued per period — and, with the features'
        derivatives ``dH``, dG_k/dθ (T, 3). ``H``/``dH`` are :meth:`features` of ``theta`` (the actual spend's part
        is reused, only the test's spend is transformed here)."""
        lt = self.lift
        T = len(lt.channel)
        G = np.empty(T)
        dG = np.empty((T, 3)) if dH is not None else None
        dm = self.dm[:, 0]
        for k, c in enumerate(lt.channel):
            d, lh, ls = theta[c]
            half, shape = np.exp(lh) * self.scale[c], np.exp(ls)
            w = self._lt_v * lt.mask[k] * self.seg_mask[:, self._lt_col[k]]
            if dH is not None:
                A2, dA2 = delayed_adstock_grad(lt.x_alt[k], d, self.stages[c])
                h2, hx2, hh2, hs2 = hill_grad(A2, half, shape)
                dG[k] = w @ (np.column_stack([hx2 * dA2, hh2 * half, hs2 * shape]) * dm[:, None] - dH[:, c, :])
            else:
                h2 = hill(carryover(lt.x_alt[k], d, self.stages[c]), half, shape)
            G[k] = w @ (dm * h2 - H[:, c])
        return G, dG

    def lift_predictions(self, sol: Solution) -> np.ndarray:
        """Each lift test as the solution predicts it, in the KPI's units."""
        H, _ = self.features(sol.theta)
        G, _ = self.lift_features(sol.theta, H)
        return sol.beta[self._lt_col] / self.ys_unit * G

    def expand(self, H: np.ndarray) -> np.ndarray:
        """Channel features (n, C) → media columns (n, K), one per channel segment."""
        if self.plain:
            return H
        return H[:, self.seg_ch] * self.seg_mask

    def _prior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        if self.sigma2 is None:
            return 0.0, np.zeros_like(theta)
        g = np.zeros_like(theta)
        # in SSE units: 2σ² × negative log prior
        k = 2.0 * self.sigma2
        m, sd = self.decay_prior
        v = k * (0.5 * (theta[:, 1] / LOG_HALF_PRIOR_SD) ** 2 + 0.5 * (theta[:, 2] / LOG_SHAPE_PRIOR_SD) ** 2
                 + 0.5 * ((theta[:, 0] - m) / sd) ** 2).sum()
        g[:, 0] = k * (theta[:, 0] - m) / sd**2
        g[:, 1] = k * theta[:, 1] / LOG_HALF_PRIOR_SD**2
        g[:, 2] = k * theta[:, 2] / LOG_SHAPE_PRIOR_SD**2
        return float(v), g

    def solve_linear(self, H: np.ndarray, G: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """β ≥ 0 and γ for fixed (segment-expanded) features; returns (β unit-scale, γ unit-scale, penalised SSE)."""
        Hw = H * self.sw[:, None]
        BtH = self.Bw.T @ Hw
        KBtH = self.Kinv @ BtH
        Q = Hw.T @ Hw - BtH.T @ KBtH
        b = Hw.T @ self.yw - BtH.T @ self.Ky
        Q = 0.5 * (Q + Q.T) + np.eye(self.n_cols) * (1e-10 * (np.trace(Q) + 1e-12))
        if self.roas_prior is not None:  # σ²·(β_k·S_k − r̄)²/(τ·r̄)² added to the SSE: still a quadratic in β
            S = self.roas_per_beta(H)
            lam = self.sigma2 * self._rp_prec * S**2
            Q = Q + np.diag(lam)
            b = b + self.sigma2 * self._rp_prec * S * self._rp_mean
        if self.lift is not None and G is not None:  # σ²·(L_k − β_j·G_k)²/se_k² per lift test
            Q = Q.copy()
            b = b.copy()
            np.add.at(Q, (self._lt_col, self._lt_col), self.sigma2 * self._lt_prec * G**2)
            np.add.at(b, self._lt_col, self.sigma2 * self._lt_prec * G * self._lt_L)
        beta = _nnls_quadratic(Q, b)
        sse = self.c0 - 2 * b @ beta + beta @ Q @ beta
        gamma = self.Ky - KBtH @ beta
        return beta, gamma, float(max(sse, 0.0))

    def roas_per_beta(self, H: np.ndarray) -> np.ndarray:
        """S_k: a media column's ROAS per unit of (unit-scale) β, for the ROAS prior."""
        return (self._rp_v @ H) / self._rp_spend

    def _roas_prior_grad(self, beta: np.ndarray, Hs: np.ndarray, dH: np.ndarray) -> np.ndarray:
        """∂/∂θ of the ROAS prior term at fixed β (envelope theorem), (C, 3)."""
        S = self.roas_per_beta(Hs)
        coef = 2.0 * self.sigma2 * self._rp_prec * (beta * S - self._rp_mean) * beta / self._rp_spend
        g = np.zeros((self.C, 3))
        if self.plain:
            g += coef[:, None] * np.einsum("t,tcj->cj", self._rp_v, dH)
        else:
            gk = np.einsum("t,tk,tkj->kj", self._rp_v, self.seg_mask, dH[:, self.seg_ch, :]) * coef[:, None]
            np.add.at(g, self.seg_ch, gk)
        return g

    def objective(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = z.reshape(self.C, 3)
        H, dH = self.features(theta, grad=True)
        Hs = self.expand(H)
        G, dG = self.lift_features(theta, H, dH) if self.lift is not None else (None, None)
        beta, gamma, sse = self.solve_linear(Hs, G)
        e = self.sw * (self.y - self.B @ gamma - Hs @ beta)  # weighted residual
        if self.plain:
            g = -2.0 * ((e * self.sw) @ dH.reshape(self.n, -1)).reshape(self.C, 3) * beta[:, None]
        else:  # each segment's β times its own part of the channel's derivative
            ew = e * self.sw
            gk = -2.0 * np.einsum("tk,tkj->kj", ew[:, None] * self.seg_mask, dH[:, self.seg_ch, :]) * beta[:, None]
            g = np.zeros((self.C, 3))
            np.add.at(g, self.seg_ch, gk)
        pv, pg = self._prior(theta)
        if self.roas_prior is not None:
            g = g + self._roas_prior_grad(beta, Hs, dH)
        if self.lift is not None:
            bj = beta[self._lt_col]
            coef = 2.0 * self.sigma2 * self._lt_prec * (bj * G - self._lt_L) * bj
            np.add.at(g, self.lift.channel, coef[:, None] * dG)
        return (sse + pv) / self.n_eff, ((g + pg) / self.n_eff).ravel()

    def solution(self, z: np.ndarray) -> Solution:
        theta = z.reshape(self.C, 3).copy()
        H, _ = self.features(theta)
        G = self.lift_features(theta, H)[0] if self.lift is not None else None
        beta, gamma, sse = self.solve_linear(self.expand(H), G)
        pv, _ = self._prior(theta)
        return Solution(theta, beta * self.ys_unit, gamma / self.Bsd * self.ys_unit, (sse + pv) / self.n_eff)


def _nnls_quadratic(Q: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin β'Qβ − 2b'β subject to β ≥ 0 (Q symmetric positive definite)."""
    try:
        sol = np.linalg.solve(Q, b)
        if (sol >= 0).all():
            return sol
        L = np.linalg.cholesky(Q)
    except np.linalg.LinAlgError:
        L = np.linalg.cholesky(Q + np.eye(len(b)) * 1e-8 * (np.trace(Q) + 1))
    # ||L'β − L^{-1}b||² = β'Qβ − 2b'β + const
    rhs = np.linalg.solve(L, b)
    beta, _ = nnls(L.T, rhs, maxiter=50 * len(b))
    return beta


def box(C: int, bounds: Bounds) -> list[tuple[float, float]]:
    return [(0.0, bounds.decay_max), bounds.log_half, bounds.log_shape] * C


def fit_problem(prob: Problem, bounds: Bounds, starts: list[np.ndarray], maxiter: int = 200,
                tol: float = 1e-9) -> Solution:
    """Best local optimum of the profiled objective over the given starting points."""
    bx = box(prob.C, bounds)
    best_z, best_f = None, np.inf
    for z0 in starts:
        z0 = np.clip(np.asarray(z0, float).ravel(), [b[0] for b in bx], [b[1] for b in bx])
        res = minimize(prob.objective, z0, jac=True, method="L-BFGS-B", bounds=bx,
                       options={"maxiter": maxiter, "ftol": tol, "gtol": 1e-7})
        if res.fun < best_f:
            best_z, best_f = res.x, float(res.fun)
    return prob.solution(best_z)


def random_starts(rng: np.random.Generator, C: int, bounds: Bounds, n: int) -> list[np.ndarray]:
    """A central start plus n−1 random ones inside the box (deterministic for the generator's seed)."""
    center = np.tile([min(0.3, bounds.decay_max / 2), 0.0, 0.0], C)
    lo = np.array([b[0] for b in box(C, bounds)])
    hi = np.array([b[1] for b in box(C, bounds)])
    out = [center]
    for _ in range(max(n - 1, 0)):
        u = rng.random(3 * C)
        # sample the middle of the box more than its edges
        out.append(lo + (hi - lo) * (0.15 + 0.7 * u))
    return out
