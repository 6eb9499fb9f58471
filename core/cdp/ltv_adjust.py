"""Lifetime value with P(alive) from the churn classifier, used only where a holdout shows it predicts better.

BG/NBD and MBG/NBD see purchase timing alone. When a customer's behaviour says she is leaving (skipped charges,
support tickets, fading email opens) they still see a frequent buyer who is "alive"; the purchase-churn classifier
(:mod:`core.cdp.churn`) sees those signals and is calibrated on what happened next. Both give P(no purchase in the
next N days): the lifetime model as ``(1 - pa) + pa * z`` with ``z`` the Poisson zero probability of an alive
customer, the classifier as ``c``. Solving ``c = (1 - pa') + pa' * z`` gives a P(alive) consistent with the
classifier, ``pa' = (1 - c) / (1 - z)`` (clipped to [0, 1]); given alive, purchases and spend stay the lifetime
models'. :func:`evaluate_adjustment` decides, one horizon back, whether that beats the plain model: the lifetime
model fitted on the orders up to ``as_of - N``, the classifier trained only on events before it, both judged on the
N days after it, with the rule of :func:`core.cdp.ltv.select_purchase_model` (total purchases first, RMSE when the
totals are within 2 points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.cdp import btyd
from core.cdp.churn import churn_population, train_churn_model
from core.cdp.churn_features import as_utc, churn_features
from core.cdp.ltv import CustomerModels, evaluate_holdout, fit_customer_models, predict_customers, rfm_summary

__all__ = ["alive_from_churn", "AdjustmentCheck", "evaluate_adjustment"]

_DAY = pd.Timedelta(days=1)
TOLERANCE = 0.02


def alive_from_churn(models: CustomerModels, summary: pd.DataFrame, churn: np.ndarray,
                     horizon_days: float) -> np.ndarray:
    """P(alive) of each customer of ``summary`` consistent with her classifier probability ``churn`` of no
    purchase within ``horizon_days`` (NaN where ``churn`` is NaN)."""
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    t = horizon_days / models.unit_days
    pa = btyd.p_alive(models.model, models.purchase.params, x, t_x, T)
    p0 = btyd.p_no_purchase(models.model, models.purchase.params, t, x, t_x, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        zero = np.clip((p0 - (1 - pa)) / np.where(pa > 0, pa, 1.0), 0.0, 1.0)  # P(no purchase | alive)
        out = (1.0 - np.asarray(churn, dtype=float)) / np.maximum(1.0 - zero, 1e-9)
    return np.where(np.isfinite(churn), np.clip(out, 0.0, 1.0), np.nan)


@dataclass(frozen=True)
class AdjustmentCheck:
    """The holdout comparison: each variant's :func:`evaluate_holdout` figures, the choice and why."""

    use: bool
    reason: str
    cutoff: str
    plain: dict[str, float]
    adjusted: dict[str, float]


def _error(ev: dict[str, float]) -> float:
    return abs(ev["predicted_purchases"] / ev["actual_purchases"] - 1) if ev["actual_purchases"] else np.inf


def evaluate_adjustment(events: pd.DataFrame, daily: pd.DataFrame, as_of: pd.Timestamp | str, model: str,
                        horizon_days: int = 90, random_state: int = 0,
                        skip_subscribers: bool = False) -> AdjustmentCheck:
    """Whether the churn-adjusted P(alive) predicts the ``horizon_days`` before ``as_of`` better than the plain
    lifetime model ``model``, on the persons of ``events`` (``daily``: ``customer, day, amount`` order totals).
    ``skip_subscribers``: judge only the persons without an active subscription one horizon back (when ``daily``
    holds one-off orders and subscriptions are predicted from their schedule, :mod:`core.cdp.recurring`).
    Raises ``ValueError`` when either model cannot be fitted one horizon back."""
    cut = as_utc(as_of) - horizon_days * _DAY
    last = (cut - _DAY).tz_localize(None)
    persons = pd.Index(events["person_id"].dropna().unique())
    if skip_subscribers:
        persons = persons.difference(churn_population(events, cut, "subscription"))
    calib = daily[daily["day"] <= last]
    summary_all = rfm_summary(calib, "customer", "day", "amount", last)
    models = fit_customer_models(summary_all, model=model)
    summary = summary_all[summary_all.index.isin(persons)]
    if summary.empty:
        raise ValueError("no buyer of the sample before the holdout")
    churn_model = train_churn_model(events[events["time"] < cut], "purchase", cutoff=cut,
                                    horizon_days=horizon_days, random_state=random_state)
    c = churn_model.predict(churn_features(events, cut, persons=summary.index)).reindex(summary.index)
    window = daily[(daily["day"] > last) & (daily["day"] <= last + horizon_days * _DAY)]
    actual = window.groupby("customer").agg(purchases=("day", "nunique"), revenue=("amount", "sum"))
    actual = actual[actual.index.isin(summary.index)]
    plain = predict_customers(summary, models, horizon_days, n_draws=20)
    adjusted = predict_customers(summary, models, horizon_days, n_draws=20,
                                 p_alive=alive_from_churn(models, summary, c.to_numpy(), horizon_days))
    ev_plain = evaluate_holdout(plain, summary, actual, horizon_days, unit_days=models.unit_days)
    ev_adj = evaluate_holdout(adjusted, summary, actual, horizon_days, unit_days=models.unit_days)
    gap = _error(ev_plain) - _error(ev_adj)
    if abs(gap) > TOLERANCE:
        use, rule = gap > 0, "total holdout purchases"
    else:
        use, rule = ev_adj["rmse"] < ev_plain["rmse"], f"per-customer RMSE (totals within {TOLERANCE:.0%})"
    def text(ev: dict[str, float]) -> str:
        return (f"{ev['predicted_purchases']:,.0f} vs actual {ev['actual_purchases']:,.0f} "
                f"({ev['predicted_purchases'] / max(ev['actual_purchases'], 1e-9) - 1:+.1%}), RMSE {ev['rmse']:.3f}")

    reason = (f"{'churn-adjusted' if use else 'plain'} lifetime model chosen on {rule}, {horizon_days} days after "
              f"{cut.date()}: plain {text(ev_plain)}; churn-adjusted {text(ev_adj)}")
    return AdjustmentCheck(use=bool(use), reason=reason, cutoff=cut.date().isoformat(), plain=ev_plain,
                           adjusted=ev_adj)
