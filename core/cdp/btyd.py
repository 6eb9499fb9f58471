"""Customer-lifetime models fitted by maximum likelihood: BG/NBD, MBG/NBD, Gamma-Gamma, shifted-beta-geometric.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a customer buys at a
  Poisson rate ``lambda ~ Gamma(r, alpha)``; after each repeat purchase she drops out with probability
  ``p ~ Beta(a, b)``. Data per customer: ``x`` repeat purchases, the time of the last one ``t_x`` and the time
  ``T`` since the first purchase (all in one time unit). A one-time buyer (x = 0) is alive for sure.
- MBG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison of models for customer
  base analysis"; lifetimes' ``ModifiedBetaGeoFitter``): the same, but the dropout coin is also tossed right
  after the first purchase, so a one-time buyer may already be gone (P(alive | x = 0) < 1). Suits bases with
  many buyers who never come back. Both share one code path (``model`` = ``"bgnbd"`` or ``"mbgnbd"`` in
  :func:`fit_purchase_model`, :func:`p_alive`, :func:`expected_purchases`, ...).
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the value of one transaction is ``Gamma(p, nu)`` with
  ``nu ~ Gamma(q, v)`` per customer, independent of the purchase process. Data: ``x`` repeat purchases and their
  mean value.
- shifted-beta-geometric (Fader & Hardie 2007, "How to project customer retention"): each subscriber renews
  every period with a constant probability ``1 - theta``, ``theta ~ Beta(alpha, beta)``.

Parameters are fitted on the log scale with L-BFGS-B and analytic gradients; customers with identical data are
fitted once with a weight, so a million customers cost little more than their distinct histories. Standard errors
come from a numerical Hessian of the log-likelihood at the optimum (on the log scale, so parameter draws from
:meth:`ModelFit.sample` stay positive). ``penalizer`` adds ``penalizer * sum(params ** 2)`` to the mean negative
log-likelihood, as ``lifetimes``' ``penalizer_coef`` does (default 0: plain maximum likelihood).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

__all__ = [
    "MIN_CUSTOMERS", "MIN_REPEAT_BUYERS", "PURCHASE_MODELS", "ModelFit", "purchase_model_name", "survived_coins",
    "fit_purchase_model", "p_alive", "p_no_purchase", "expected_purchases", "population_purchases",
    "bgnbd_log_likelihood", "fit_bgnbd", "bgnbd_p_alive", "bgnbd_expected_purchases", "bgnbd_population_purchases",
    "bgnbd_p_no_purchase", "mbgnbd_log_likelihood", "fit_mbgnbd", "mbgnbd_p_alive", "mbgnbd_expected_purchases",
    "mbgnbd_population_purchases", "mbgnbd_p_no_purchase", "gamma_gamma_log_likelihood",
    "fit_gamma_gamma", "gamma_gamma_expected_value", "sbg_log_likelihood", "fit_sbg", "fit_sbg_cohort",
    "sbg_survival", "sbg_expected_residual_lifetime",
]

MIN_CUSTOMERS = 50
MAX_LOG_VARIANCE = 1.0  # cap of a parameter draw's log-variance along any direction (ModelFit.sample)
MIN_REPEAT_BUYERS = 10
_LOG_BOUND = 18.0  # log-parameters stay within exp(+-18): far outside any sensible value, keeps L-BFGS-B finite

Params = Sequence[float] | Sequence[np.ndarray] | np.ndarray
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class ModelFit:
    """A fitted model: parameters, their covariance on the log scale, and how the fit went."""

    model: str
    names: tuple[str, ...]
    params: tuple[float, ...]
    cov_log: np.ndarray  # covariance of log(params) from the inverse Hessian of the total log-likelihood
    log_likelihood: float  # total, without the penalty
    n_obs: int
    penalizer: float
    converged: bool

    def __getitem__(self, name: str) -> float:
        return self.params[self.names.index(name)]

    @property
    def std_errors(self) -> dict[str, float]:
        """Standard errors on the natural scale (delta method: ``param * sd(log param)``)."""
        sd = np.sqrt(np.clip(np.diag(self.cov_log), 0.0, None))
        return {n: float(p * s) for n, p, s in zip(self.names, self.params, sd, strict=True)}

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.params, strict=True))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` parameter draws (rows) from the asymptotic normal of the log-parameters, for intervals. A
        parameter at its bound (e.g. BG/NBD's ``a`` when nobody seems to drop out, Gamma-Gamma's ``q`` and ``v``
        together when every customer spends alike) has a nearly flat likelihood and a huge log-variance along
        that direction; the numerical Hessian there is not exact, so long draws along it leave the ridge (a
        spend rate ``q / v`` off by orders of magnitude). The covariance's eigenvalues are capped at
        :data:`MAX_LOG_VARIANCE` (a factor e^±1.6 at 90%), which keeps the draws near the ridge; they are also
        kept within e^±40 so that they stay finite."""
        vals, vecs = np.linalg.eigh((self.cov_log + self.cov_log.T) / 2)
        cov = (vecs * np.clip(vals, 0.0, MAX_LOG_VARIANCE)) @ vecs.T
        draws = rng.multivariate_normal(np.log(self.params), cov, size=n, method="eigh")
        return np.exp(np.clip(draws, -40.0, 40.0))

    def describe(self) -> str:
        se = self.std_errors
        parts = ", ".join(f"{n}={self[n]:.4g} (se {se[n]:.2g})" for n in self.names)
        note = "" if self.converged else " (did not converge: a parameter at its bound; read with care)"
        return f"{self.model}: {parts}; log-likelihood {self.log_likelihood:.1f} on {self.n_obs} observations{note}"


def _compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the given columns and how often each occurs."""
    stacked = np.column_stack(cols)
    uniq, counts = np.unique(stacked, axis=0, return_counts=True)
    return [uniq[:, i] for i in range(uniq.shape[1])], counts.astype(float)


def _numerical_hessian(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Central differences of an analytic gradient, symmetrised."""
    k = len(x)
    h = 1e-4 * np.maximum(1.0, np.abs(x))
    hess = np.empty((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = h[i]
        hess[i] = (grad(x + step) - grad(x - step)) / (2 * h[i])
    return (hess + hess.T) / 2


def _invert(hess: np.ndarray) -> np.ndarray:
    """Inverse of a Hessian; eigenvalues near zero (a flat direction, e.g. a parameter at its bound) are floored
    so the covariance stays usable but wide in that direction."""
    vals, vecs = np.linalg.eigh(hess)
    floor = max(1e-8 * float(np.max(np.abs(vals))), 1e-12)
    vals = np.where(vals < floor, floor, vals)
    return (vecs / vals) @ vecs.T


def _fit(model: str, names: tuple[str, ...], total: Objective, n_obs: float, x0: np.ndarray,
         penalizer: float) -> ModelFit:
    """Minimise ``-loglik / n_obs + penalizer * sum(params**2)`` over log-parameters; ``total(log_params)``
    returns the total log-likelihood and its gradient with respect to the log-parameters."""

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = total(z)
        theta = np.exp(z)
        value = -ll / n_obs + penalizer * float(np.sum(theta ** 2))
        grad = -g / n_obs + 2 * penalizer * theta ** 2
        if not np.isfinite(value):
            return 1e300, np.zeros_like(z)
        return value, grad

    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(x0)
    best = None
    for start in (x0, x0 + 0.5, x0 - 0.5):
        res = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
        if best is None or res.fun < best.fun - 1e-10:
            best = res
        if res.success and np.all(np.abs(res.x) < _LOG_BOUND - 1e-6):
            break
    z = best.x
    hess = _numerical_hessian(lambda v: objective(v)[1] * n_obs, z)
    at_bound = bool(np.any(np.abs(z) >= _LOG_BOUND - 1e-6))
    return ModelFit(model=model, names=names, params=tuple(float(v) for v in np.exp(z)), cov_log=_invert(hess),
                    log_likelihood=float(total(z)[0]), n_obs=int(round(n_obs)), penalizer=penalizer,
                    converged=bool(best.success) and not at_bound)


def _as_arrays(*cols: object) -> list[np.ndarray]:
    return [np.asarray(c, dtype=float) for c in cols]


def _check_rfm(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not (len(x) == len(t_x) == len(T)):
        raise ValueError("frequency, recency and T must have the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("frequency, recency and T must be finite numbers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T for every customer")


# ------------------------------------------------------------------------------------------- BG/NBD, MBG/NBD
# Both models share one set of formulas in ``n``, the number of dropout coins a customer alive at T has survived:
# ``n = x`` under BG/NBD (a coin after every repeat purchase), ``n = x + 1`` under MBG/NBD (also one right after
# the first purchase). Alive at T: ``(1 - p)^n lambda^x e^(-lambda T)``; dropped out right after the last
# purchase (possible when n > 0): ``p (1 - p)^(n - 1) lambda^x e^(-lambda t_x)``.

PURCHASE_MODELS = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD"}  # name -> ModelFit.model
_FIRST_COIN = {"bgnbd": 0.0, "mbgnbd": 1.0}


def _first_coin(model: str) -> float:
    if model not in _FIRST_COIN:
        raise ValueError(f"unknown purchase model {model!r}: use one of {', '.join(sorted(_FIRST_COIN))}")
    return _FIRST_COIN[model]


def purchase_model_name(fit: ModelFit) -> str:
    """``"bgnbd"`` or ``"mbgnbd"`` for a fit of that model (its key in :data:`PURCHASE_MODELS`)."""
    for name, label in PURCHASE_MODELS.items():
        if fit.model == label:
            return name
    raise ValueError(f"{fit.model} is not a purchase model")


def survived_coins(model: str, frequency) -> np.ndarray:
    """Dropout coins survived by a customer alive at T: given alive, ``p ~ Beta(a, b + survived_coins)``."""
    return np.asarray(frequency, dtype=float) + _first_coin(model)


def _dropped(r, alpha, a, b, x, n, t_x, T):
    """``d`` = log odds of "dropped out right after the last purchase" against "alive at T" (-inf when n = 0)."""
    has = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(a) - np.log(np.where(has, b + n - 1, 1.0)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(has, d, -np.inf)


def _purchase_terms(r, alpha, a, b, x, n, t_x, T):
    """Pieces shared by the likelihood and its gradient: ``ll = base + log(1 + exp(d))``."""
    gl = special.gammaln  # B(a, b + n) / B(a, b) = G(b + n) G(a + b) / (G(b) G(a + b + n))
    base = (gl(r + x) - gl(r) + r * np.log(alpha) + gl(b + n) - gl(b) + gl(a + b) - gl(a + b + n)
            - (r + x) * np.log(alpha + T))
    return base, _dropped(r, alpha, a, b, x, n, t_x, T)


def _purchase_log_likelihood(model: str, params: Params, frequency, recency, T) -> np.ndarray:
    r, alpha, a, b = params
    x, t_x, T = _as_arrays(frequency, recency, T)
    base, d = _purchase_terms(r, alpha, a, b, x, x + _first_coin(model), t_x, T)
    return base + np.logaddexp(0.0, d)


def _purchase_total(x, n, t_x, T, w) -> Objective:
    def total(z: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(z)
        base, d = _purchase_terms(r, alpha, a, b, x, n, t_x, T)
        ll = base + np.logaddexp(0.0, d)
        s = special.expit(d)  # share of the likelihood from "dropped out after the last purchase"
        lat, lal = np.log(alpha + T), np.log(alpha + t_x)
        bn1 = np.where(n > 0, b + n - 1, 1.0)
        ab = special.digamma(a + b) - special.digamma(a + b + n)
        g_r = special.digamma(r + x) - special.digamma(r) + np.log(alpha) - lat + s * (lat - lal)
        g_alpha = r / alpha - (r + x) / (alpha + T) + s * (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x))
        g_a = ab + s / a
        g_b = special.digamma(b + n) - special.digamma(b) + ab - s / bn1
        grad = np.array([r * (w @ g_r), alpha * (w @ g_alpha), a * (w @ g_a), b * (w @ g_b)])
        return float(w @ ll), grad
    return total


def fit_purchase_model(model: str, frequency, recency, T, penalizer: float = 0.0) -> ModelFit:
    """Fit ``model`` (``"bgnbd"`` or ``"mbgnbd"``), ``(r, alpha, a, b)``, by maximum likelihood on per-customer
    (frequency, recency, T).

    Raises ``ValueError`` with fewer than ``MIN_CUSTOMERS`` customers or ``MIN_REPEAT_BUYERS`` repeat buyers:
    below that the dropout process is not identified and the estimates are noise."""
    first = _first_coin(model)
    label = PURCHASE_MODELS[model]
    x, t_x, T = _as_arrays(frequency, recency, T)
    _check_rfm(x, t_x, T)
    if len(x) < MIN_CUSTOMERS:
        raise ValueError(f"too little data: {label} needs at least {MIN_CUSTOMERS} customers, got {len(x)}")
    repeat = int(np.sum(x > 0))
    if repeat < MIN_REPEAT_BUYERS:
        raise ValueError(f"too little data: {label} needs at least {MIN_REPEAT_BUYERS} repeat buyers (customers "
                         f"with frequency > 0), got {repeat} of {len(x)} customers")
    (ux, ut, uT), w = _compress(x, t_x, T)
    # start: rate from the mean repeat purchases per unit time, dropout probability a / (a + b) = 1/2
    rate = max(float(np.sum(x)) / max(float(np.sum(T)), 1e-9), 1e-6)
    x0 = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    return _fit(label, ("r", "alpha", "a", "b"), _purchase_total(ux, ux + first, ut, uT, w), float(len(x)), x0,
                penalizer)


def p_alive(model: str, params: Params, frequency, recency, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T) = 1 / (1 + [n > 0] a / (b + n - 1) ((alpha + T) / (alpha + t_x))^(r + x))
    with ``n`` the coins survived (x under BG/NBD, x + 1 under MBG/NBD)."""
    r, alpha, a, b = params
    x, t_x, T = _as_arrays(frequency, recency, T)
    return special.expit(-_dropped(r, alpha, a, b, x, x + _first_coin(model), t_x, T))


def p_no_purchase(model: str, params: Params, t: float, frequency, recency, T) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T).

    A dead customer never buys; an alive one drops out only right after a purchase, so she makes none in the
    window exactly when her Poisson process has no event there. Given alive and the history, ``lambda`` is
    ``Gamma(r + x, alpha + T)``, whose Poisson zero probability is ``((alpha + T) / (alpha + T + t))^(r + x)``:
    ``P0 = (1 - P(alive)) + P(alive) * ((alpha + T) / (alpha + T + t))^(r + x)``, for both models."""
    r, alpha, *_ = params
    x, _, T = _as_arrays(frequency, recency, T)
    pa = p_alive(model, params, frequency, recency, T)
    return 1.0 - pa + pa * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))


def _safe_a(a):
    """a = 1 is a removable singularity of the expectation formulas: step just off it."""
    a = np.asarray(a, dtype=float)
    return np.where(np.abs(a - 1.0) < 1e-5, 1.0 + 1e-5, a)


def expected_purchases(model: str, params: Params, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T]. Alive, a customer buys at her rate until a coin after a purchase
    drops her, ``E = (1 - e^(-lambda p t)) / p``; averaged over ``lambda ~ Gamma(r + x, alpha + T)`` and
    ``p ~ Beta(a, b + n)`` it is ``(a + b + n - 1) / (a - 1) [1 - ((alpha + T) / (alpha + T + t))^(r + x)
    2F1(r + x, b + n; a + b + n - 1; t / (alpha + T + t))]``, times P(alive) (BG/NBD: FHL 2005 eq. 10, n = x;
    MBG/NBD: Batislam et al. 2007, n = x + 1). Valid for a < 1 too (analytic continuation)."""
    r, alpha, a, b = params
    a = _safe_a(a)
    x, t_x, T = _as_arrays(frequency, recency, T)
    n = x + _first_coin(model)
    t = np.asarray(t, dtype=float)
    z = t / (alpha + T + t)
    ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    bracket = 1.0 - ratio * special.hyp2f1(r + x, b + n, a + b + n - 1, z)
    return (a + b + n - 1) / (a - 1) * bracket * p_alive(model, params, x, t_x, T)


def population_purchases(model: str, params: Params, t) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in (0, t] of a new customer, ``(a + b - 1) / (a - 1) [1 - (alpha /
    (alpha + t))^r 2F1(r, b; a + b - 1; t / (alpha + t))]`` under BG/NBD (FHL 2005, eq. 9), ``b / (a - 1) [1 -
    (alpha / (alpha + t))^r 2F1(r, b + 1; a + b; t / (alpha + t))]`` under MBG/NBD (alive after the first
    purchase with probability b / (a + b)): the conditional expectation at x = t_x = T = 0."""
    t = np.asarray(t, dtype=float)
    zero = np.zeros(np.shape(t))
    return expected_purchases(model, params, t, zero, zero, zero)


def bgnbd_log_likelihood(params: Params, frequency, recency, T) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T) under BG/NBD ``params = (r, alpha, a, b)`` (FHL 2005, eq. 6)."""
    return _purchase_log_likelihood("bgnbd", params, frequency, recency, T)


def fit_bgnbd(frequency, recency, T, penalizer: float = 0.0) -> ModelFit:
    """Fit BG/NBD ``(r, alpha, a, b)``: :func:`fit_purchase_model` with ``"bgnbd"``."""
    return fit_purchase_model("bgnbd", frequency, recency, T, penalizer)


def bgnbd_p_alive(params: Params, frequency, recency, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    return p_alive("bgnbd", params, frequency, recency, T)


def bgnbd_p_no_purchase(params: Params, t: float, frequency, recency, T) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T) under BG/NBD (see :func:`p_no_purchase`)."""
    return p_no_purchase("bgnbd", params, t, frequency, recency, T)


def bgnbd_expected_purchases(params: Params, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10)."""
    return expected_purchases("bgnbd", params, t, frequency, recency, T)


def bgnbd_population_purchases(params: Params, t) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in (0, t] of a new customer (FHL 2005, eq. 9)."""
    return population_purchases("bgnbd", params, t)


def mbgnbd_log_likelihood(params: Params, frequency, recency, T) -> np.ndarray:
    """Log-likelihood under MBG/NBD (Batislam, Denizel & Filiztekin 2007), ``params = (r, alpha, a, b)``:
    ``L = B(a, b + x + 1) / B(a, b) G(r + x) alpha^r / (G(r) (alpha + T)^(r + x))
    + B(a + 1, b + x) / B(a, b) G(r + x) alpha^r / (G(r) (alpha + t_x)^(r + x))``, for every x including 0."""
    return _purchase_log_likelihood("mbgnbd", params, frequency, recency, T)


def fit_mbgnbd(frequency, recency, T, penalizer: float = 0.0) -> ModelFit:
    """Fit MBG/NBD ``(r, alpha, a, b)``: :func:`fit_purchase_model` with ``"mbgnbd"``."""
    return fit_purchase_model("mbgnbd", frequency, recency, T, penalizer)


def mbgnbd_p_alive(params: Params, frequency, recency, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T) = 1 / (1 + a / (b + x) ((alpha + T) / (alpha + t_x))^(r + x)), below 1 for
    one-time buyers too."""
    return p_alive("mbgnbd", params, frequency, recency, T)


def mbgnbd_p_no_purchase(params: Params, t: float, frequency, recency, T) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T) under MBG/NBD (see :func:`p_no_purchase`)."""
    return p_no_purchase("mbgnbd", params, t, frequency, recency, T)


def mbgnbd_expected_purchases(params: Params, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] = (a + b + x) / (a - 1) [1 - ((alpha + T) / (alpha + T + t))^(r + x)
    2F1(r + x, b + x + 1; a + b + x; t / (alpha + T + t))] P(alive)."""
    return expected_purchases("mbgnbd", params, t, frequency, recency, T)


def mbgnbd_population_purchases(params: Params, t) -> np.ndarray:
    """E[X(t)] = b / (a - 1) [1 - (alpha / (alpha + t))^r 2F1(r, b + 1; a + b; t / (alpha + t))]."""
    return population_purchases("mbgnbd", params, t)


# ----------------------------------------------------------------------------------------------- Gamma-Gamma

def gamma_gamma_log_likelihood(params: Params, frequency, monetary) -> np.ndarray:
    """Log-density of each customer's mean transaction value ``m`` over ``x`` transactions, ``params = (p, q, v)``:
    ``f(m) = G(px+q) / (G(px) G(q)) v^q m^(px-1) x^(px) / (v + x m)^(px+q)``."""
    p, q, v = params
    x, m = _as_arrays(frequency, monetary)
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + x * m))


def _gg_total(x, m, w) -> Objective:
    lm, lx = np.log(m), np.log(x)

    def total(z: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(z)
        ll = gamma_gamma_log_likelihood((p, q, v), x, m)
        lvm = np.log(v + x * m)
        dpq = special.digamma(p * x + q)
        g_p = x * (dpq - special.digamma(p * x) + lm + lx - lvm)
        g_q = dpq - special.digamma(q) + np.log(v) - lvm
        g_v = q / v - (p * x + q) / (v + x * m)
        return float(w @ ll), np.array([p * (w @ g_p), q * (w @ g_q), v * (w @ g_v)])
    return total


def fit_gamma_gamma(frequency, monetary, penalizer: float = 0.0) -> ModelFit:
    """Fit Gamma-Gamma ``(p, q, v)`` on repeat buyers: ``frequency`` repeat purchases of mean value ``monetary``.

    Customers without a repeat purchase, or whose repeat purchases are worth nothing, carry no information on
    spend per transaction and are left out. The model assumes spend is independent of purchase frequency."""
    x, m = _as_arrays(frequency, monetary)
    if len(x) != len(m):
        raise ValueError("frequency and monetary value must have the same length")
    if np.any(~np.isfinite(m)) or np.any(m < 0):
        raise ValueError("monetary value must be a non-negative number for every customer")
    keep = (x > 0) & (m > 0)
    if keep.sum() < MIN_REPEAT_BUYERS:
        raise ValueError(f"too little data: Gamma-Gamma needs at least {MIN_REPEAT_BUYERS} repeat buyers with a "
                         f"positive spend, got {int(keep.sum())}")
    x, m = x[keep], m[keep]
    scale = float(np.median(m))  # fit on m / scale (v scales with it), so the start suits any currency
    (ux, um), w = _compress(x, m / scale)
    mean, var = float(np.mean(m / scale)), float(np.var(m / scale))
    q0 = 3.0
    p0 = max(mean ** 2 / max(var, 1e-9), 0.5)
    fit = _fit("Gamma-Gamma", ("p", "q", "v"), _gg_total(ux, um, w), float(len(x)),
               np.log([p0, q0, p0 * (q0 - 1) / mean]), penalizer)
    params = (fit.params[0], fit.params[1], fit.params[2] * scale)
    return ModelFit(model=fit.model, names=fit.names, params=params, cov_log=fit.cov_log,
                    log_likelihood=fit.log_likelihood - len(x) * np.log(scale), n_obs=fit.n_obs,
                    penalizer=penalizer, converged=fit.converged)


def gamma_gamma_expected_value(params: Params, frequency, monetary) -> np.ndarray:
    """E[value of a transaction | x, m] = (v + x m) p / (p x + q - 1): a weighted mean of the population mean
    ``p v / (q - 1)`` and the customer's own ``m`` (the population mean alone for x = 0). Needs q > 1."""
    p, q, v = params
    x, m = _as_arrays(frequency, monetary)
    m = np.where(x > 0, m, 0.0)
    return (v + x * m) * p / (p * x + q - 1)


# ----------------------------------------------------------------------------------- shifted-beta-geometric

def sbg_log_likelihood(params: Params, periods_survived, active) -> np.ndarray:
    """Log-likelihood of each subscriber under sBG ``params = (alpha, beta)``.

    ``periods_survived`` is the number of renewals made; a subscriber who left (``active`` false) did so at the
    next renewal, ``P(T = s + 1) = B(alpha + 1, beta + s) / B(alpha, beta)``; one still active contributes
    ``S(s) = B(alpha, beta + s) / B(alpha, beta)``."""
    alpha, beta = params
    s = np.asarray(periods_survived, dtype=float)
    act = np.asarray(active, dtype=bool)
    churned = special.betaln(alpha + 1, beta + s) - special.betaln(alpha, beta)
    survived = special.betaln(alpha, beta + s) - special.betaln(alpha, beta)
    return np.where(act, survived, churned)


def _sbg_total(s, act, w) -> Objective:
    def total(z: np.ndarray) -> tuple[float, np.ndarray]:
        alpha, beta = np.exp(z)
        ll = sbg_log_likelihood((alpha, beta), s, act)
        dg = special.digamma
        prior_a, prior_b = dg(alpha) - dg(alpha + beta), dg(beta) - dg(alpha + beta)
        g_a = np.where(act, dg(alpha) - dg(alpha + beta + s), dg(alpha + 1) - dg(alpha + beta + s + 1)) - prior_a
        g_b = np.where(act, dg(beta + s) - dg(alpha + beta + s), dg(beta + s) - dg(alpha + beta + s + 1)) - prior_b
        return float(w @ ll), np.array([alpha * (w @ g_a), beta * (w @ g_b)])
    return total


def fit_sbg(periods_survived, active, weights=None, penalizer: float = 0.0) -> ModelFit:
    """Fit sBG ``(alpha, beta)`` on subscribers: renewals made and whether still active (``weights``: how many
    subscribers each row stands for)."""
    s = np.asarray(periods_survived, dtype=float)
    act = np.asarray(active, dtype=bool)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=float)
    if not (len(s) == len(act) == len(w)):
        raise ValueError("periods_survived, active and weights must have the same length")
    if np.any(s < 0) or np.any(s != np.round(s)) or np.any(w < 0):
        raise ValueError("periods_survived must be whole numbers >= 0 and weights >= 0")
    if w[~act].sum() == 0:
        raise ValueError("too little data: the sBG model needs at least one subscriber who left")
    if s.max(initial=0) < 2:
        raise ValueError("too little data: the sBG model needs subscribers observed for at least 2 periods")
    keep = w > 0
    return _fit("sBG", ("alpha", "beta"), _sbg_total(s[keep], act[keep], w[keep]), float(w.sum()),
                np.zeros(2), penalizer)


def fit_sbg_cohort(survivors: Sequence[float], penalizer: float = 0.0) -> ModelFit:
    """Fit sBG on one cohort's survivor counts ``n_0, n_1, ..., n_k`` (``n_0`` at the start, ``n_t`` still
    active after t renewals): ``n_(t-1) - n_t`` left at renewal t, ``n_k`` are still active."""
    n = np.asarray(survivors, dtype=float)
    if len(n) < 3:
        raise ValueError("too little data: the sBG model needs survivor counts for at least 3 periods (0, 1, 2)")
    if n[0] <= 0 or np.any(np.diff(n) > 0) or np.any(n < 0):
        raise ValueError("survivor counts must start positive and never increase")
    k = len(n) - 1
    lost = n[:-1] - n[1:]
    periods = np.concatenate([np.arange(k), [k]])  # left at renewal t had made t - 1 renewals
    active = np.concatenate([np.zeros(k, bool), [True]])
    return fit_sbg(periods, active, weights=np.concatenate([lost, [n[-1]]]), penalizer=penalizer)


def sbg_survival(params: Params, t) -> np.ndarray:
    """S(t) = P(still active after t renewals) = B(alpha, beta + t) / B(alpha, beta)."""
    alpha, beta = params
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def sbg_expected_residual_lifetime(params: Params, periods_survived, discount_rate: float = 0.0) -> np.ndarray:
    """Expected number of renewals still to come for an active subscriber who has made ``s`` renewals.

    With ``discount_rate`` d per period the k-th future renewal counts ``(1 + d)^-(k - 1)`` (the next one, due
    now, undiscounted): the discounted expected residual lifetime of Fader & Hardie (2010),
    ``DERL = (beta + s) / (alpha + beta + s) * 2F1(1, beta + s + 1; alpha + beta + s + 1; 1 / (1 + d))``.
    Undiscounted it is ``(beta + s) / (alpha - 1)``, infinite for alpha <= 1. Multiply by the payment per
    period for the residual value of the subscriber."""
    alpha, beta = params
    s = np.asarray(periods_survived, dtype=float)
    if discount_rate < 0:
        raise ValueError("discount_rate must be >= 0")
    if discount_rate == 0:
        return np.where(alpha > 1, (beta + s) / max(alpha - 1, 1e-300), np.inf)
    lead = (beta + s) / (alpha + beta + s)
    return lead * special.hyp2f1(1.0, beta + s + 1, alpha + beta + s + 1, 1.0 / (1.0 + discount_rate))
