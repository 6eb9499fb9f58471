"""Scoring a customer base: the churn models, the lifetime models and subscription retention fitted together at a
data's end, and the per-person prediction columns they give.

:func:`fit_predictor` fits, at ``as_of`` (the first midnight after the newest event):

* the two churn models of :mod:`core.cdp.churn` (subscription and purchase, 90 days), on ``events`` (which may be
  a sample of persons: a model needs a few tens of thousands of people, not a million). A target with too little
  history gets a message instead of a model;
* BG/NBD or MBG/NBD, with Gamma-Gamma (:mod:`core.cdp.ltv`), on the daily order totals of the buyers among
  ``events``' persons: when the events hold paid subscription charges, on their one-off orders only, the charges
  being predicted from each subscription's schedule and cancellation risk (:mod:`core.cdp.recurring`, its factors
  calibrated on monthly backtests). Both purchase models are fitted on the orders up to ``as_of - 90 days`` and
  the one that predicted the 90 days after it better is refitted on everything
  (:func:`core.cdp.ltv.select_purchase_model`); then, the same way one horizon back (on the persons without an
  active subscription when charges are split off), whether taking P(alive) from the purchase-churn classifier
  predicts better (:mod:`core.cdp.ltv_adjust`); both checks are on the card;
* the shifted-beta-geometric retention of subscriptions, per 30-day month (created to cancelled, or still active
  at ``as_of``), for what a new subscriber is worth.

:func:`score_persons` then gives, per person: ``churn_risk`` (the target that fits the person: subscription for an
active subscriber when that model exists, purchase for anyone else who has ordered; none for people who never
ordered), both targets' risks, ``predicted_ltv`` (12 months) with its 90% predictive interval, ``expected_purchases``,
``p_alive``, ``next_order_date`` and a few behaviour features the policies read.

Next order date: for an active subscriber on schedule, the next charge (last paid charge plus the interval);
otherwise the median of the BG/NBD time to the next order, ``P(no order by t) = 1/2``, i.e.
``t = (alpha + T) (((pa - 1/2) / pa)^(-1/(r + x)) - 1)``, left empty when an order within a year is less likely
than not (``pa <= 1/2`` or ``t > 365``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.cdp import btyd
from core.cdp.churn import TARGETS, ChurnModel, churn_population, train_churn_model
from core.cdp.churn_features import as_utc, churn_features
from core.cdp.ltv import CustomerModels, fit_customer_models, predict_customers, rfm_summary, select_purchase_model
from core.cdp.ltv_adjust import alive_from_churn, evaluate_adjustment
from core.cdp.recurring import (
    RecurringCalibration,
    calibrate_recurring,
    charge_days,
    one_off_days,
    recurring_schedule,
    sbg_cancel_90,
)

__all__ = [
    "PREDICTION_COLUMNS", "POLICY_FEATURES", "LTV_HORIZON_DAYS", "CHURN_HORIZON_DAYS", "Predictor",
    "subscription_lifetimes", "fit_predictor", "score_persons", "predict_lifetime",
]

CHURN_HORIZON_DAYS = 90
LTV_HORIZON_DAYS = 365
RETENTION_PERIOD_DAYS = 30.0
RECURRING_BACKTESTS = 12  # monthly cutoffs that calibrate the charge schedule (core.cdp.recurring)
POLICY_FEATURES: tuple[str, ...] = ("tickets_90d", "days_since_last_ticket", "opens_trend_90", "charges_failed_90d",
                                    "charge_overdue")
PREDICTION_COLUMNS: tuple[str, ...] = (
    "person_id", "churn_risk", "churn_target", "purchase_churn_risk", "subscription_churn_risk", "predicted_ltv",
    "predicted_ltv_low", "predicted_ltv_high", "expected_purchases", "p_alive", "next_order_date",
    *POLICY_FEATURES,
)
_DAY = pd.Timedelta(days=1)


@dataclass
class Predictor:
    """Everything fitted at one ``as_of``: churn models by target, lifetime models, retention, and why a part is
    missing (``messages``: part → sentence)."""

    as_of: str
    churn: dict[str, ChurnModel] = field(default_factory=dict)
    ltv: CustomerModels | None = None
    ltv_evaluation: dict[str, Any] | None = None
    ltv_evaluations: dict[str, dict[str, float]] = field(default_factory=dict)
    ltv_choice: str | None = None
    ltv_adjust: bool = False  # P(alive) from the purchase-churn classifier (core.cdp.ltv_adjust)
    ltv_adjustment: dict[str, Any] | None = None
    retention: btyd.ModelFit | None = None
    retention_subscriptions: int = 0
    recurring_split: bool = False  # subscription charges predicted from their schedule (core.cdp.recurring)
    recurring: RecurringCalibration | None = None
    messages: dict[str, str] = field(default_factory=dict)
    fitted_on_persons: int = 0

    def cards(self) -> dict[str, Any]:
        """JSON-ready description of every model: churn cards, lifetime parameters and holdout, retention."""
        out: dict[str, Any] = {t: json.loads(m.card.to_json()) if m is not None else None
                               for t, m in ((t, self.churn.get(t)) for t in TARGETS)}
        out["ltv"] = None if self.ltv is None else {
            "model": self.ltv.model, "purchase": self.ltv.purchase.as_dict(),
            "gamma_gamma": self.ltv.gamma_gamma.as_dict(), "horizon_days": LTV_HORIZON_DAYS,
            "holdout": self.ltv_evaluation, "holdout_by_model": self.ltv_evaluations, "choice": self.ltv_choice,
            "churn_adjusted": self.ltv_adjust, "adjustment": self.ltv_adjustment,
            "description": self.ltv.describe()}
        out["retention"] = None if self.retention is None else {
            **self.retention.as_dict(), "period_days": RETENTION_PERIOD_DAYS,
            "subscriptions": self.retention_subscriptions,
            "expected_paid_months_12": self.expected_paid_periods(12)}
        out["recurring"] = {"split": self.recurring_split,
                            "calibration": None if self.recurring is None else asdict(self.recurring)}
        out["as_of"], out["messages"] = self.as_of, dict(self.messages)
        out["fitted_on_persons"] = self.fitted_on_persons
        return out

    def expected_paid_periods(self, periods: int) -> float | None:
        """Expected paid 30-day months within the next ``periods`` of a new subscriber (the first is paid)."""
        if self.retention is None:
            return None
        return float(btyd.sbg_survival(self.retention.params, np.arange(periods)).sum())


def _props(frame: pd.DataFrame) -> pd.DataFrame:
    rows = [json.loads(p) if isinstance(p, str) and p else {} for p in frame["properties"]]
    return pd.DataFrame(rows, index=frame.index)


def subscription_lifetimes(events: pd.DataFrame, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """One row per subscription created before ``as_of``: whole 30-day months it lasted (``periods``) and
    whether it is still active (not cancelled before ``as_of``)."""
    as_of = as_utc(as_of)
    ev = events[events["time"] < as_of]
    created = ev[ev["type"] == "subscription_created"]
    if created.empty:
        return pd.DataFrame({"periods": pd.Series(dtype=float), "active": pd.Series(dtype=bool)})
    sid = _props(created).get("subscription_id", pd.Series(index=created.index, dtype=object)).astype(str)
    start = pd.Series(pd.to_datetime(created["time"], utc=True).to_numpy(), index=sid.to_numpy())
    start = start.groupby(level=0).min()
    cancels = ev[ev["type"] == "subscription_cancelled"]
    end = pd.Series(dtype="datetime64[ns, UTC]")
    if len(cancels):
        cid = _props(cancels).get("subscription_id", pd.Series(index=cancels.index, dtype=object)).astype(str)
        end = pd.Series(pd.to_datetime(cancels["time"], utc=True).to_numpy(), index=cid.to_numpy())
        end = end.groupby(level=0).min()
    stop = end.reindex(start.index)
    active = stop.isna().to_numpy()
    stop = stop.fillna(as_of)
    days = ((stop - start).dt.total_seconds() / 86400.0).clip(lower=0.0)
    return pd.DataFrame({"periods": np.floor(days.to_numpy() / RETENTION_PERIOD_DAYS), "active": active},
                        index=start.index)


def _daily(transactions: pd.DataFrame) -> pd.DataFrame:
    return transactions.rename(columns={"person_id": "customer"})[["customer", "day", "amount"]]


def fit_predictor(events: pd.DataFrame, transactions: pd.DataFrame, as_of: pd.Timestamp | str,
                  random_state: int = 0, split_recurring: bool = True) -> Predictor:
    """Fit every model at ``as_of`` (see the module docstring). ``events``: person events (``person_id, type,
    time, amount, properties``), possibly of a sample of persons; ``transactions``: every buyer's orders as
    ``person_id, day, amount`` (refunded orders left out); the lifetime models are fitted on the buyers among
    ``events``' persons, whose charges are known. ``split_recurring=False`` treats paid subscription charges as
    purchases like any other (the comparison in ``bench/ltv_worlds.py``)."""
    as_of = as_utc(as_of)
    pred = Predictor(as_of=as_of.isoformat(), fitted_on_persons=int(events["person_id"].nunique()))
    for target in TARGETS:
        try:
            pred.churn[target] = train_churn_model(events, target, cutoff=as_of, horizon_days=CHURN_HORIZON_DAYS,
                                                   random_state=random_state)
        except ValueError as e:
            pred.messages[target] = str(e)
    subs = subscription_lifetimes(events, as_of)
    pred.retention_subscriptions = int(len(subs))
    try:
        pred.retention = btyd.fit_sbg(subs["periods"], subs["active"])
    except ValueError as e:
        pred.messages["retention"] = f"subscription retention: {e}"
    last_day = (as_of - _DAY).tz_localize(None)
    daily = _daily(transactions)
    daily = daily[daily["customer"].isin(pd.Index(events["person_id"].dropna().unique()))]
    charges = charge_days(events)
    pred.recurring_split = bool(len(charges)) and split_recurring
    if pred.recurring_split:
        daily = one_off_days(daily, charges)
        _calibrate_recurring(pred, events, charges, as_of)
    model = "bgnbd"
    try:  # BG/NBD or MBG/NBD, whichever predicted the last 90 days better from the days before them
        choice = select_purchase_model(daily, "customer", "day", "amount", last_day, CHURN_HORIZON_DAYS)
        model, pred.ltv_choice = choice.model, choice.reason
        pred.ltv_evaluation = {**choice.evaluations[model], "cutoff": choice.calibration_cutoff.date().isoformat(),
                               "model": model, "orders": "one-off" if pred.recurring_split else "all"}
        pred.ltv_evaluations = choice.evaluations
    except ValueError as e:
        pred.messages["ltv_holdout"] = str(e)
    try:
        pred.ltv = fit_customer_models(rfm_summary(daily, "customer", "day", "amount", last_day), model=model)
    except ValueError as e:
        pred.messages["ltv"] = str(e)
    if pred.ltv is not None and "purchase" in pred.churn:
        try:
            check = evaluate_adjustment(events, daily, as_of, model, CHURN_HORIZON_DAYS, random_state,
                                        skip_subscribers=pred.recurring_split)
            pred.ltv_adjust, pred.ltv_adjustment = check.use, asdict(check)
        except ValueError as e:
            pred.messages["ltv_adjustment"] = f"churn-adjusted lifetime value not checked: {e}"
    return pred


def _cancel_90(predictor: Predictor, feats: pd.DataFrame, risk: pd.Series | None) -> np.ndarray:
    """Each person's P(cancel within 90 days): the subscription classifier's, else the sBG retention's."""
    c = np.full(len(feats), np.nan) if risk is None else risk.reindex(feats.index).to_numpy(dtype=float)
    if predictor.retention is not None:
        sbg = sbg_cancel_90(predictor.retention, feats["sub_tenure_days"].to_numpy(dtype=float),
                            RETENTION_PERIOD_DAYS)
        c = np.where(np.isfinite(c), c, np.where(feats["sub_active"].to_numpy() > 0, sbg, np.nan))
    return c


def _calibrate_recurring(pred: Predictor, events: pd.DataFrame, charges: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """The schedule's factors on monthly backtests over the year before ``as_of - 90 days`` (see
    :mod:`core.cdp.recurring`), or a message why not."""
    start = as_utc(events["time"].min())
    model = pred.churn.get("subscription")
    backtests = []
    for k in range(RECURRING_BACKTESTS):
        cut = as_of - (CHURN_HORIZON_DAYS + 30 * k) * _DAY
        if cut - start < CHURN_HORIZON_DAYS * _DAY:
            break
        subs = churn_population(events, cut, "subscription")
        if not len(subs):
            continue
        feats = churn_features(events, cut, persons=subs)
        risk = None
        if model is not None:
            with threadpool_limits(limits=1):
                risk = model.predict(feats)
        backtests.append((cut, feats, _cancel_90(pred, feats, risk)))
    if not backtests:
        pred.messages["recurring"] = "no active subscription a horizon back to check the charge schedule on"
        return
    pred.recurring = calibrate_recurring(backtests, charges, CHURN_HORIZON_DAYS)


def _next_order(models: CustomerModels, summary: pd.DataFrame, p_alive: np.ndarray) -> np.ndarray:
    """Days from ``as_of`` to the median next order (NaN when unlikely within a year)."""
    r, alpha, *_ = models.purchase.params
    x, T = summary["frequency"].to_numpy(dtype=float), summary["T"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (alpha + T) * (((p_alive - 0.5) / p_alive) ** (-1.0 / (r + x)) - 1.0) * models.unit_days
    return np.where((p_alive > 0.5) & (t <= LTV_HORIZON_DAYS), t, np.nan)


def score_persons(predictor: Predictor, events: pd.DataFrame, transactions: pd.DataFrame,
                  persons: pd.Index | None = None, seed: int = 0) -> pd.DataFrame:
    """Prediction columns (:data:`PREDICTION_COLUMNS`) of ``persons`` (default: everyone in ``events``) at the
    predictor's ``as_of``. ``events`` and ``transactions`` must hold all of those persons' history."""
    as_of = as_utc(predictor.as_of)
    ev = events[events["person_id"].notna()]
    idx = pd.Index(np.sort(ev["person_id"].unique()) if persons is None else persons, name="person_id")
    out = pd.DataFrame(index=idx)
    feats = churn_features(ev, as_of, persons=idx)
    with threadpool_limits(limits=1):  # one thread: on a busy 2-core machine OpenMP threads halve the speed
        _churn_columns(predictor, ev, as_of, idx, feats, out)
    _lifetime_columns(predictor, ev, transactions, as_of, idx, feats, out, seed)
    out = out.reset_index()
    return out[list(PREDICTION_COLUMNS)]


def _churn_columns(predictor: Predictor, ev: pd.DataFrame, as_of: pd.Timestamp, idx: pd.Index,
                   feats: pd.DataFrame, out: pd.DataFrame) -> None:
    for target in TARGETS:
        col = f"{target}_churn_risk"
        out[col] = np.nan
        model = predictor.churn.get(target)
        if model is not None:
            pop = churn_population(ev, as_of, target).intersection(idx)
            if len(pop):
                out.loc[pop, col] = model.predict(feats.loc[pop]).to_numpy()
    sub = out["subscription_churn_risk"].notna()
    out["churn_risk"] = out["subscription_churn_risk"].where(sub, out["purchase_churn_risk"])
    out["churn_target"] = np.where(sub, "subscription", np.where(out["purchase_churn_risk"].notna(), "purchase",
                                                                  None))


def predict_lifetime(predictor: Predictor, events: pd.DataFrame, transactions: pd.DataFrame,
                     features: pd.DataFrame, risks: pd.DataFrame, horizon_days: float = LTV_HORIZON_DAYS,
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Lifetime predictions (:func:`core.cdp.ltv.predict_customers` columns) over ``horizon_days`` for the buyers
    of ``transactions`` among ``features``' persons, and their RFM summary; ``None`` without a lifetime model or
    buyers. With subscription charges in the fit, the one-off orders go to the purchase model and the charges to
    their schedule (:mod:`core.cdp.recurring`). ``risks``: ``purchase_churn_risk`` and
    ``subscription_churn_risk`` by person (NaN: none)."""
    if predictor.ltv is None:
        return None
    as_of = as_utc(predictor.as_of)
    daily = _daily(transactions)
    daily = daily[daily["customer"].isin(features.index)]
    charges = charge_days(events) if predictor.recurring_split else None
    if charges is not None:
        daily = one_off_days(daily, charges)
    if daily.empty:
        return None
    summary = rfm_summary(daily, "customer", "day", "amount", (as_of - _DAY).tz_localize(None))
    f = features.reindex(summary.index)
    rec = None
    if charges is not None:
        rec = recurring_schedule(f, charges, _cancel_90(predictor, f, risks["subscription_churn_risk"]),
                                 horizon_days, predictor.recurring)
    alive = None
    if predictor.ltv_adjust:
        churn = risks["purchase_churn_risk"].reindex(summary.index).to_numpy(dtype=float)
        if rec is not None:  # a subscriber's orders are her charges: the classifier says nothing of her one-offs
            churn = np.where(f["sub_active"].to_numpy() > 0, np.nan, churn)
        alive = alive_from_churn(predictor.ltv, summary, churn, CHURN_HORIZON_DAYS)
    return predict_customers(summary, predictor.ltv, horizon_days, seed=seed, p_alive=alive, recurring=rec), summary


def _lifetime_columns(predictor: Predictor, ev: pd.DataFrame, transactions: pd.DataFrame, as_of: pd.Timestamp,
                      idx: pd.Index, feats: pd.DataFrame, out: pd.DataFrame, seed: int) -> None:
    cols = ("predicted_ltv", "predicted_ltv_low", "predicted_ltv_high", "expected_purchases", "p_alive")
    for c in cols:
        out[c] = np.nan
    next_days = pd.Series(np.nan, index=idx)
    res = predict_lifetime(predictor, ev, transactions, feats, out, LTV_HORIZON_DAYS, seed)
    if res is not None:
        p, summary = res
        for c in cols:
            out.loc[p.index, c] = p[c].to_numpy()
        next_days.loc[summary.index] = _next_order(predictor.ltv, summary, p["p_alive"].to_numpy())
    # an active subscriber on schedule is next charged one interval after the last paid charge
    on_schedule = (feats["sub_active"] > 0) & (feats["charge_overdue"] <= 1.5)
    to_charge = (feats["sub_interval_days"] - feats["days_since_last_charge"]).clip(lower=0.0)
    next_days = next_days.where(~on_schedule | to_charge.isna(), to_charge)
    day0 = as_of.tz_localize(None).normalize()
    out["next_order_date"] = pd.to_datetime(day0 + pd.to_timedelta(np.ceil(next_days.to_numpy()), unit="D"))
    for c in POLICY_FEATURES:
        out[c] = feats[c].to_numpy()
