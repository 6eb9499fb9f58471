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

__all__ = ["rolling_origin_error", "choose_stages", "STAGE_CHOICES"]

STAGE_CHOICES = (2, 3)  # delayed-peak carry-over shapes tried per channel besides the geometric one


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
        sol = fit_problem(spec.problem(w), bounds, [np.asarray(theta0, float).ravel()], maxiter=100)
        pred = predict(spec, sol).fitted[origin:origin + h]
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
            z0 = sol.theta.copy()
            z0[c, 0] = min(max(z0[c, 0], 0.4), bounds.decay_max)
            cand = fit_problem(cand_spec.problem(), bounds, [z0.ravel()], maxiter=80)
            if cand.objective < best_obj - price:
                best_obj, best = cand.objective, (cand_spec, cand)
        if best is not None:
            spec, sol = best
            changed.append(c)
    return spec, sol, changed
