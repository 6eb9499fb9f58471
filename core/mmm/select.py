"""Model choices made by the data: the KPI's form by rolling-origin cross-validation, carry-over shapes by BIC.

In-sample fit always prefers the more flexible structure; what matters is how well a structure predicts weeks it
has not seen, in time order (a model fitted on data up to a date, scored on the weeks after it, with the spend that
really happened). That is how the KPI's form (additive or log) is chosen. A channel's carry-over shape (geometric or
delayed peak) changes one discrete choice of an otherwise identical model, so the penalised fit with a BIC price
for the extra flexibility decides it: a delayed shape is kept only where it explains clearly more.
"""

from __future__ import annotations

import numpy as np

from core.mmm.estimate import Bounds, Solution, fit_problem
from core.mmm.spec import Spec, predict

__all__ = ["for_origin", "rolling_origin_error", "choose_stages", "rescue_zero_channels", "STAGE_CHOICES",
           "RESCUE_STARTS"]

STAGE_CHOICES = (2, 3)  # delayed-peak carry-over shapes tried per channel besides the geometric one
RESCUE_STARTS = ((0.1, 0.0), (0.5, 0.7), (0.85, 0.0), (0.5, -0.7))  # (decay as a share of its maximum, log half)


def for_origin(spec: Spec, origin: int) -> Spec:
    """The structure as it would be fitted on the periods before ``origin``: trend changes that start later than
    half a knot spacing before the origin are left out (their slope would rest on a few weeks of data, or none, and
    be extrapolated over the whole horizon)."""
    keep = np.ones(spec.B.shape[1], bool)
    gap = int(round(45 / spec.days))
    for j, name in enumerate(spec.bnames[:spec.B.shape[1]]):
        if name.startswith("trend_change"):
            nz = np.flatnonzero(spec.B[:, j] > 0)
            if not len(nz) or nz[0] > origin - gap:
                keep[j] = False
    if keep.all():
        return spec
    return spec.with_(B=spec.B[:, keep], pen=spec.pen[keep], bnames=[b for b, k in zip(spec.bnames, keep,
                                                                                     strict=True) if k])


def rolling_origin_error(spec: Spec, theta0: np.ndarray, bounds: Bounds, y_kpi: np.ndarray, folds: int = 3,
                         horizon_days: int = 56) -> float | None:
    """Mean absolute percentage error of ``spec`` on ``folds`` successive held-out horizons (time-ordered).

    Fold j fits on every period before its origin and predicts the next ``horizon_days``; origins are the last
    ``folds`` horizons of the data. None when the history is too short for any fold.
    """
    n = len(spec.y)
    h = max(int(round(horizon_days / spec.days)), 1)
    min_train = max(2 * h, int(round(365 / spec.days)))
    errs = []
    for j in range(folds, 0, -1):
        origin = n - j * h
        if origin < min_train:
            continue
        w = np.r_[np.ones(origin), np.zeros(n - origin)]
        fold = for_origin(spec, origin)
        sol = fit_problem(fold.problem(w), bounds, [np.asarray(theta0, float).ravel()], maxiter=100)
        pred = predict(fold, sol).fitted[origin:origin + h]
        actual = y_kpi[origin:origin + h]
        ok = np.abs(actual) > 1e-9
        if ok.any():
            errs.append(float(np.mean(np.abs(actual[ok] - pred[ok]) / np.abs(actual[ok]))))
    return float(np.mean(errs)) if errs else None


def choose_stages(spec: Spec, sol: Solution, bounds: Bounds) -> tuple[Spec, Solution, list[int]]:
    """Per channel, try delayed-peak carry-over shapes; keep one where it lowers the penalised objective by more
    than a BIC price (log n·σ²/n). Returns the new spec, its solution and the channels whose shape changed."""
    n = len(spec.y)
    price = np.log(n) * (spec.sigma2 or 1.0) / n
    changed = []
    for c in range(spec.x.shape[1]):
        best_obj, best = sol.objective, None
        for k in STAGE_CHOICES:
            st = spec.stages.copy()
            st[c] = k
            cand_spec = spec.with_(stages=st)
            starts = []
            for d0 in (max(sol.theta[c, 0], 0.4), 0.9 * bounds.decay_max):
                z0 = sol.theta.copy()
                z0[c, 0] = min(d0, bounds.decay_max)
                starts.append(z0.ravel())
            cand = fit_problem(cand_spec.problem(), bounds, starts, maxiter=80)
            if cand.objective < best_obj - price:
                best_obj, best = cand.objective, (cand_spec, cand)
        if best is not None:
            spec, sol = best
            changed.append(c)
    return spec, sol, changed


def _zero_channels(spec: Spec, sol: Solution) -> list[int]:
    seg_ch = spec.seg[0]
    return [c for c in range(spec.x.shape[1]) if np.all(sol.beta[seg_ch == c] <= 0)]


def rescue_zero_channels(spec: Spec, sol: Solution, bounds: Bounds) -> Solution:
    """Restart channels the fit left at zero effect from other carry-over and saturation shapes.

    With β = 0 a channel's carry-over and saturation no longer change the fit, so its parameters drift to their
    prior mean and the search stays there: a channel whose effect needs a long carry-over or a high saturation
    point (a delayed brand channel) is then reported as worthless without its shapes ever being tried. Each such
    channel is refitted from a few shapes spread over the box; the best penalised objective wins.
    """
    for c in _zero_channels(spec, sol):
        starts = []
        for frac, lh in RESCUE_STARTS:
            z0 = sol.theta.copy()
            z0[c, 0] = frac * bounds.decay_max
            z0[c, 1] = float(np.clip(lh, *bounds.log_half))
            starts.append(z0.ravel())
        cand = fit_problem(spec.problem(), bounds, starts, maxiter=80)
        if cand.objective < sol.objective - 1e-12:
            sol = cand
    return sol
