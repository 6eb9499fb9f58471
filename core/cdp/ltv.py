"""Per-customer lifetime value: the RFM summary of transactions, fitted BG/NBD (or MBG/NBD) + Gamma-Gamma, and
predictions.

The summary is the standard one of the buy-till-you-die models: purchases on the same day count once (their
amounts add up), ``frequency`` is the number of repeat purchase days, ``recency`` the time from the first to the
last purchase day, ``T`` the time from the first purchase day to the cutoff, ``monetary_value`` the mean value of
the repeat purchase days (the first purchase, often discounted or unusual, is left out). The cutoff day is the
last day of the calibration period: transactions on it are included. Times are in days (``freq="D"``) or weeks.

The purchase model is BG/NBD by default; MBG/NBD (``model="mbgnbd"``) also lets a customer drop out right after
her first purchase, which suits a base where many one-time buyers never return. :func:`select_purchase_model`
picks between them on a holdout of the transactions.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.cdp import btyd
from core.cdp.recurring import Recurring

__all__ = [
    "SUMMARY_COLUMNS", "PREDICTION_COLUMNS", "CustomerModels", "clean_transactions", "rfm_summary",
    "fit_customer_models", "predict_customers", "holdout_actuals", "evaluate_holdout", "PurchaseModelChoice",
    "select_purchase_model",
]

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
PREDICTION_COLUMNS = ("expected_purchases", "expected_revenue", "churn_probability", "p_alive", "predicted_ltv",
                      "predicted_ltv_low", "predicted_ltv_high")
UNIT_DAYS = {"D": 1.0, "W": 7.0}
DAYS_PER_YEAR = 365.25


def _unit(freq: str) -> float:
    if freq not in UNIT_DAYS:
        raise ValueError(f"freq must be one of {sorted(UNIT_DAYS)} (days or weeks), got {freq!r}")
    return UNIT_DAYS[freq]


def _day(value) -> pd.Timestamp:
    """A date as midnight without a time zone (UTC for an aware one), as transaction days are kept."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def clean_transactions(transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str,
                       date_format: str | None = None) -> pd.DataFrame:
    """Three columns ``customer``, ``day`` (midnight, no time zone) and ``amount``, parsed from raw columns.

    Raises ``ValueError`` naming the column and the row (data rows counted from 1) of the first missing column,
    empty customer id, unparsable date or amount, or negative amount."""
    missing = [c for c in (customer_col, date_col, amount_col) if c not in transactions.columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(map(repr, missing))}; "
                         f"columns present: {', '.join(map(str, transactions.columns))}")
    cust = transactions[customer_col].astype(str).str.strip()
    bad = (transactions[customer_col].isna() | (cust == "")).to_numpy()
    if bad.any():
        raise ValueError(f"column {customer_col!r}, row {_first_bad(bad)}: empty customer id")
    raw_dates = transactions[date_col]
    if pd.api.types.is_datetime64_any_dtype(raw_dates):
        dates = pd.to_datetime(raw_dates, utc=True)
    else:
        text = raw_dates.astype(str).str.strip()
        dates = pd.to_datetime(text, errors="coerce", utc=True, format=date_format)
        retry = dates.isna() & (text != "")
        if date_format is None and retry.any():  # the format was inferred from the first row: others may differ
            dates[retry] = pd.to_datetime(text[retry], errors="coerce", utc=True, format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        row = _first_bad(bad)
        raise ValueError(f"column {date_col!r}, row {row}: cannot read {raw_dates.iloc[row - 1]!r} as a date")
    raw_amounts = transactions[amount_col]
    amounts = pd.to_numeric(raw_amounts, errors="coerce")
    bad = (amounts.isna() | ~np.isfinite(amounts)).to_numpy()
    if bad.any():
        row = _first_bad(bad)
        raise ValueError(f"column {amount_col!r}, row {row}: cannot read {raw_amounts.iloc[row - 1]!r} as an amount")
    bad = (amounts < 0).to_numpy()
    if bad.any():
        row = _first_bad(bad)
        raise ValueError(f"column {amount_col!r}, row {row}: negative amount {amounts.iloc[row - 1]} "
                         "(refunds should be netted into their order before modelling)")
    return pd.DataFrame({"customer": cust.to_numpy(), "day": dates.dt.tz_localize(None).dt.normalize().to_numpy(),
                         "amount": amounts.to_numpy(dtype=float)})


def _daily(clean: pd.DataFrame) -> pd.DataFrame:
    return clean.groupby(["customer", "day"], sort=True, as_index=False)["amount"].sum()


def rfm_summary(transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str, cutoff,
                freq: str = "D") -> pd.DataFrame:
    """Per customer with a purchase on or before ``cutoff``: frequency, recency, T and monetary_value.

    The index holds the customer ids; ``attrs["freq"]`` records the time unit for the models."""
    unit = _unit(freq)
    cutoff = _day(cutoff)
    clean = clean_transactions(transactions, customer_col, date_col, amount_col)
    daily = _daily(clean[clean["day"] <= cutoff])
    g = daily.groupby("customer", sort=True)
    first, last = g["day"].min(), g["day"].max()
    n_days, total = g["day"].size(), g["amount"].sum()
    first_amount = g["amount"].first()  # rows are sorted by day within a customer
    frequency = (n_days - 1).astype(float)
    repeat_value = total - first_amount
    out = pd.DataFrame({
        "frequency": frequency,
        "recency": (last - first).dt.days / unit,
        "T": (cutoff - first).dt.days / unit,
        "monetary_value": np.where(frequency > 0, repeat_value / frequency.where(frequency > 0, 1.0), 0.0),
    })
    out.index.name = customer_col
    out.attrs["freq"] = freq
    return out


@dataclass(frozen=True)
class CustomerModels:
    """A purchase model (BG/NBD or MBG/NBD, ``model`` tells which) and Gamma-Gamma for spend, fitted on one
    summary whose time unit is ``unit_days``."""

    purchase: btyd.ModelFit
    gamma_gamma: btyd.ModelFit
    unit_days: float

    @property
    def model(self) -> str:
        """The purchase model's name: ``"bgnbd"`` or ``"mbgnbd"``."""
        return btyd.purchase_model_name(self.purchase)

    @property
    def bgnbd(self) -> btyd.ModelFit:
        """The purchase model's fit under its historical name (an MBG/NBD fit when ``model == "mbgnbd"``)."""
        return self.purchase

    def __setstate__(self, state: dict) -> None:
        """Unpickle, also from before MBG/NBD, when the purchase fit was the field ``bgnbd``."""
        state = dict(state)
        if "bgnbd" in state:
            state.setdefault("purchase", state.pop("bgnbd"))
        self.__dict__.update(state)

    def describe(self) -> str:
        unit = "day" if self.unit_days == 1 else f"{self.unit_days:g} days"
        return f"{self.purchase.describe()} (time unit: {unit})\n{self.gamma_gamma.describe()}"


def fit_customer_models(summary: pd.DataFrame, penalizer: float = 0.0, freq: str | None = None,
                        model: str = "bgnbd") -> CustomerModels:
    """Fit the purchase ``model`` (``"bgnbd"`` or ``"mbgnbd"``) and Gamma-Gamma on an :func:`rfm_summary`
    (``freq`` defaults to the summary's own unit).

    Raises ``ValueError`` naming what is missing when there are fewer than 50 customers or 10 repeat buyers."""
    if model not in btyd.PURCHASE_MODELS:
        raise ValueError(f"model must be one of {', '.join(btyd.PURCHASE_MODELS)}, got {model!r}")
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"the summary lacks column(s) {', '.join(missing)}; build it with rfm_summary()")
    unit = _unit(freq or summary.attrs.get("freq", "D"))
    n, repeat = len(summary), int((summary["frequency"] > 0).sum())
    if n < btyd.MIN_CUSTOMERS or repeat < btyd.MIN_REPEAT_BUYERS:
        raise ValueError(f"too little data to fit lifetime models: need at least {btyd.MIN_CUSTOMERS} customers "
                         f"and {btyd.MIN_REPEAT_BUYERS} repeat buyers (customers with purchases on two or more "
                         f"days) up to the cutoff; got {n} customers and {repeat} repeat buyers")
    bg = btyd.fit_purchase_model(model, summary["frequency"], summary["recency"], summary["T"], penalizer=penalizer)
    gg = btyd.fit_gamma_gamma(summary["frequency"], summary["monetary_value"], penalizer=penalizer)
    if gg["q"] <= 1:
        raise ValueError(f"the Gamma-Gamma fit has q = {gg['q']:.3g} <= 1: spend per order is too heavy-tailed "
                         "for a finite expected order value")
    return CustomerModels(purchase=bg, gamma_gamma=gg, unit_days=unit)


def _discount_share(model: str, params, horizon: float, x, t_x, T, rate_annual: float, unit_days: float,
                    expected: np.ndarray) -> np.ndarray:
    """Share of the expected purchases' value left after discounting: increments of the expected purchases over
    steps of at most 30 days, each discounted at its midpoint by ``(1 + d)^-(t / 1 year)``."""
    if rate_annual == 0 or horizon == 0:
        return np.ones(len(x))
    steps = int(min(max(np.ceil(horizon * unit_days / 30), 1), 60))
    edges = np.linspace(0.0, horizon, steps + 1)
    previous, disc = np.zeros(len(x)), np.zeros(len(x))
    for k in range(steps):
        current = btyd.expected_purchases(model, params, edges[k + 1], x, t_x, T)
        mid_years = (edges[k] + edges[k + 1]) / 2 * unit_days / DAYS_PER_YEAR
        disc += (current - previous) * (1 + rate_annual) ** -mid_years
        previous = current
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, disc / np.where(expected > 0, expected, 1.0), 1.0)


def _with_p_alive(out: pd.DataFrame, given: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Point predictions with P(alive) replaced where ``given`` is finite: expectations scaled by the ratio of
    the two P(alive), P(no purchase) = 1 - P(alive) (1 - P(no purchase | alive))."""
    pa = out["p_alive"].to_numpy()
    new = np.where(np.isfinite(given), np.clip(given, 0.0, 1.0), pa)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(pa > 0, new / np.where(pa > 0, pa, 1.0), 0.0)
        zero_alive = np.where(pa > 0, (out["churn_probability"].to_numpy() - (1 - pa)) / np.where(pa > 0, pa, 1.0),
                              1.0)
    out = out.copy()
    for c in ("expected_purchases", "expected_revenue"):
        out[c] = out[c].to_numpy() * ratio
    out["churn_probability"] = 1.0 - new * (1.0 - np.clip(zero_alive, 0.0, 1.0))
    out["p_alive"] = new
    return out, new


def _predictive_value(models: CustomerModels, horizon: float, x, t_x, T, m, scale: np.ndarray, level: float,
                      n_draws: int, seed: int, chunk: int = 5000, alive: np.ndarray | None = None,
                      recurring: Recurring | None = None, discount: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Interval of each customer's realised (discounted) revenue in the horizon, by simulation: parameter draws
    from both fits, then per draw whether she is alive (P(alive) of the purchase model: under MBG/NBD below 1
    for one-time buyers too, as the coin after the first purchase may have dropped her), her Poisson purchases
    from the posterior rate ``Gamma(r + x, alpha + T)``, cut at the future purchase after which she drops out
    (the coin is tossed after each purchase; given alive, ``p ~ Beta(a, b + n)`` with ``n`` the coins survived:
    x under BG/NBD, x + 1 under MBG/NBD), and their values from the posterior spend rate
    ``Gamma(p x + q, v + x m)``. Only the draws that get that far are simulated further. ``recurring`` charges,
    simulated by :meth:`Recurring.sample`, add to each draw. Chunks of customers run on threads, each with its
    own seeded generator."""
    seeds = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seeds.spawn(1)[0])
    model = models.model
    r, alpha, a, b = models.purchase.sample(n_draws, rng).T
    p, q, v = models.gamma_gamma.sample(n_draws, rng).T
    tail = (1 - level) / 2
    low, high = np.empty(len(x)), np.empty(len(x))
    starts = range(0, len(x), chunk)

    def run(start: int, child: np.random.SeedSequence) -> None:
        rng = np.random.default_rng(child)
        sl = slice(start, start + chunk)
        xc, tc, Tc, mc = x[sl], t_x[sl], T[sl], m[sl]
        pa = btyd.p_alive(model, (r, alpha, a, b), xc[:, None], tc[:, None], Tc[:, None])
        if alive is not None:  # P(alive) given from outside: the same for every parameter draw
            pa = np.broadcast_to(alive[sl][:, None], pa.shape)
        ci, di = np.nonzero(rng.random(pa.shape) < pa)
        xi, Ti, al = xc[ci], Tc[ci], alpha[di]
        counts = rng.negative_binomial(r[di] + xi, (al + Ti) / (al + Ti + horizon))
        buy = counts > 0
        ci, di, xi, counts = ci[buy], di[buy], xi[buy], counts[buy]
        drop = np.clip(rng.beta(a[di], b[di] + btyd.survived_coins(model, xi)), 1e-12, 1.0)
        n_purchases = np.minimum(counts, rng.geometric(drop))
        spend_rate = rng.gamma(p[di] * xi + q[di], 1.0 / (v[di] + xi * mc[ci]))
        value = np.zeros(pa.shape)
        value[ci, di] = rng.gamma(n_purchases * p[di], 1.0 / spend_rate) * scale[sl][ci]
        if recurring is not None:
            rows = np.arange(len(x))[sl]
            subs = rows[recurring.active[sl]]
            if len(subs):
                value[subs - start] += recurring.sample(subs, horizon * models.unit_days, n_draws, rng, discount)
        qs = np.quantile(value, [tail, 1 - 2 * tail, 1 - tail], axis=1)
        low[sl] = qs[0]
        # a lower tail absorbed by "no purchase" puts the whole miss rate above: [0, q(level)]
        high[sl] = np.where(qs[0] <= 0, qs[1], qs[2])

    children = seeds.spawn(len(starts))
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1, 8)) as pool:
        list(pool.map(run, starts, children))
    return low, high


def _point_predictions(summary: pd.DataFrame, models: CustomerModels, horizon: float) -> pd.DataFrame:
    """The expectations of :func:`predict_customers` (``horizon`` in the models' time unit), without intervals."""
    x, t_x, T, m = (summary[c].to_numpy(dtype=float) for c in SUMMARY_COLUMNS)
    model, bg, gg = models.model, models.purchase.params, models.gamma_gamma.params
    purchases = btyd.expected_purchases(model, bg, horizon, x, t_x, T)
    aov = btyd.gamma_gamma_expected_value(gg, x, m)
    return pd.DataFrame({
        "expected_purchases": purchases, "expected_order_value": aov, "expected_revenue": purchases * aov,
        "churn_probability": btyd.p_no_purchase(model, bg, horizon, x, t_x, T),
        "p_alive": btyd.p_alive(model, bg, x, t_x, T),
    }, index=summary.index)


def predict_customers(summary: pd.DataFrame, models: CustomerModels, horizon_days: float,
                      discount_rate_annual: float = 0.0, level: float = 0.9, n_draws: int = 200,
                      seed: int = 0, p_alive: np.ndarray | None = None,
                      recurring: Recurring | None = None) -> pd.DataFrame:
    """Per customer of ``summary``: what the next ``horizon_days`` after the cutoff hold.

    - ``expected_purchases``: the purchase model's (BG/NBD or MBG/NBD) conditional expectation;
      ``expected_order_value``: Gamma-Gamma conditional mean; ``expected_revenue`` their product (spend is
      assumed independent of purchase frequency).
    - ``p_alive``: P(still active at the cutoff; 1 for one-time buyers under BG/NBD, not under MBG/NBD).
      ``churn_probability``: P(no purchase in the horizon)
      ``= (1 - p_alive) + p_alive * ((alpha + T) / (alpha + T + t))^(r + x)``, the Poisson zero probability of
      an alive customer averaged over her posterior rate (she can drop out only right after a purchase).
    - ``predicted_ltv``: expected revenue discounted at ``discount_rate_annual`` (equal to expected_revenue at 0).
    - ``predicted_ltv_low`` / ``_high``: a ``level`` (90%) predictive interval of the revenue the customer will
      actually bring in the horizon. It includes both the uncertainty of the fitted parameters and the
      customer's own randomness (whether she is alive, her Poisson purchases, the value of each order): an
      interval of the expectation alone would be far narrower than what one customer really does. Equal tails,
      except when at least ``(1 - level) / 2`` of the outcomes are zero: then ``[0, level quantile]``. For a
      customer likely to buy nothing the interval is ``[0, 0]`` while predicted_ltv, a mean, is positive.
      Discounting scales each simulated value by the customer's expected discount share (an approximation for
      purchase timing). Draws are seeded by ``seed``, so the same inputs give the same file.
    - ``p_alive`` (optional, aligned with ``summary``; NaN keeps the model's): P(alive) taken from elsewhere, e.g.
      a churn classifier that sees more than purchase timing. Given alive, purchases and spend stay the models'
      (the expectations are the model's conditional ones times this P(alive)), and the simulation draws alive
      from it.
    - ``recurring`` (optional, rows aligned with ``summary``): subscription charges ahead
      (:mod:`core.cdp.recurring`), when ``summary`` holds one-off orders only. Their expected count and revenue add
      to the expectations, P(no purchase) multiplies by P(no charge), P(alive) is at least the chance she pays
      her next charge, and the interval's draws include them.
    """
    if horizon_days < 0:
        raise ValueError("horizon_days must be >= 0")
    if discount_rate_annual < 0:
        raise ValueError("discount_rate_annual must be >= 0")
    horizon = horizon_days / models.unit_days
    x, t_x, T, m = (summary[c].to_numpy(dtype=float) for c in SUMMARY_COLUMNS)
    out = _point_predictions(summary, models, horizon)
    alive = None
    if p_alive is not None:
        out, alive = _with_p_alive(out, np.asarray(p_alive, dtype=float))
    purchases = out["expected_purchases"].to_numpy()
    share = _discount_share(models.model, models.purchase.params, horizon, x, t_x, T, discount_rate_annual,
                            models.unit_days, purchases)
    low, high = _predictive_value(models, horizon, x, t_x, T, m, share, level, n_draws, seed, alive=alive,
                                  recurring=recurring, discount=discount_rate_annual)
    out["predicted_ltv"] = out["expected_revenue"].to_numpy() * share
    if recurring is not None:
        charges = recurring.expected(horizon_days)
        out["expected_purchases"] += charges
        out["expected_revenue"] += charges * recurring.amount
        out["predicted_ltv"] += recurring.expected(horizon_days, discount_rate_annual) * recurring.amount
        out["churn_probability"] *= recurring.p_none(horizon_days)
        first = np.clip(recurring.factor, 0.0, 1.0) * recurring.survival[:, 0]
        out["p_alive"] = np.where(recurring.active, np.maximum(out["p_alive"].to_numpy(), first), out["p_alive"])
    out["predicted_ltv_low"], out["predicted_ltv_high"] = low, high
    return out


def holdout_actuals(transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str, cutoff,
                    horizon_days: float) -> pd.DataFrame:
    """Per customer: purchase days and revenue after ``cutoff`` and within ``horizon_days`` of it."""
    cutoff = _day(cutoff)
    clean = clean_transactions(transactions, customer_col, date_col, amount_col)
    window = clean[(clean["day"] > cutoff) & (clean["day"] <= cutoff + pd.Timedelta(days=horizon_days))]
    daily = _daily(window)
    out = daily.groupby("customer").agg(purchases=("day", "size"), revenue=("amount", "sum"))
    out.index.name = customer_col
    return out


def evaluate_holdout(predictions: pd.DataFrame, summary: pd.DataFrame, actual: pd.DataFrame, horizon_days: float,
                     unit_days: float = 1.0) -> dict[str, float]:
    """Totals and per-customer errors of the predictions against the holdout, beside a naive baseline (each
    customer's past repeat-purchase rate ``frequency / T`` times the horizon). Customers first seen in the
    holdout have no prediction and are only counted (``new_customers``)."""
    act = actual.reindex(predictions.index).fillna(0.0)
    pred, real = predictions["expected_purchases"].to_numpy(), act["purchases"].to_numpy(dtype=float)
    T = summary["T"].reindex(predictions.index).to_numpy(dtype=float)
    rate = np.where(T > 0, summary["frequency"].reindex(predictions.index).to_numpy(dtype=float) / np.where(
        T > 0, T, 1.0), 0.0)
    naive = rate * horizon_days / unit_days
    return {
        "customers": float(len(pred)),
        "new_customers": float(len(actual.index.difference(predictions.index))),
        "predicted_purchases": float(pred.sum()), "actual_purchases": float(real.sum()),
        "naive_purchases": float(naive.sum()),
        "predicted_revenue": float(predictions["expected_revenue"].sum()),
        "actual_revenue": float(act["revenue"].sum()),
        "mae": float(np.mean(np.abs(pred - real))), "rmse": float(np.sqrt(np.mean((pred - real) ** 2))),
        "naive_mae": float(np.mean(np.abs(naive - real))), "naive_rmse": float(np.sqrt(np.mean((naive - real) ** 2))),
    }


@dataclass(frozen=True)
class PurchaseModelChoice:
    """What :func:`select_purchase_model` chose (``model``), why, and each model's holdout evaluation
    (:func:`evaluate_holdout` plus ``abs_relative_error`` of the total purchases), by model name."""

    model: str
    evaluations: dict[str, dict[str, float]]
    calibration_cutoff: pd.Timestamp
    reason: str


def select_purchase_model(transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str, cutoff,
                          holdout_days: float = 90, freq: str = "D", penalizer: float = 0.0,
                          tolerance: float = 0.02) -> PurchaseModelChoice:
    """Choose BG/NBD or MBG/NBD for ``transactions`` by how each predicted a holdout.

    Both models (with Gamma-Gamma) are fitted on the transactions up to ``cutoff - holdout_days`` (that day
    included) and predict the purchase days of those customers in the ``holdout_days`` after it, up to
    ``cutoff`` included; customers first seen in the holdout are left out. The rule:

    1. the smaller absolute relative error of the total purchases, ``|predicted / actual - 1|``, wins when the
       two errors differ by more than ``tolerance`` (absolute: 0.02 = 2 percentage points);
    2. otherwise the smaller per-customer RMSE of the purchases wins (an exact tie keeps BG/NBD).

    Fit the chosen model on the data up to ``cutoff`` for the predictions. Raises ``ValueError`` when the
    calibration period has too little data or nobody among its customers bought in the holdout."""
    cutoff = _day(cutoff)
    calibration = cutoff - pd.Timedelta(days=holdout_days)
    clean = clean_transactions(transactions, customer_col, date_col, amount_col)
    summary = rfm_summary(clean, "customer", "day", "amount", calibration, freq=freq)
    actual = holdout_actuals(clean, "customer", "day", "amount", calibration, holdout_days)
    evaluations: dict[str, dict[str, float]] = {}
    for name in btyd.PURCHASE_MODELS:
        models = fit_customer_models(summary, penalizer=penalizer, model=name)
        pred = _point_predictions(summary, models, holdout_days / models.unit_days)
        ev = evaluate_holdout(pred, summary, actual, holdout_days, unit_days=models.unit_days)
        if ev["actual_purchases"] == 0:
            raise ValueError(f"no purchases in the holdout after {calibration.date()} by the calibration "
                             "period's customers: nothing to compare the models on")
        ev["abs_relative_error"] = abs(ev["predicted_purchases"] / ev["actual_purchases"] - 1)
        evaluations[name] = ev
    bg, mbg = evaluations["bgnbd"], evaluations["mbgnbd"]
    gap = bg["abs_relative_error"] - mbg["abs_relative_error"]
    if abs(gap) > tolerance:
        chosen = "mbgnbd" if gap > 0 else "bgnbd"
        rule = "total holdout purchases"
    else:
        chosen = "mbgnbd" if mbg["rmse"] < bg["rmse"] else "bgnbd"
        rule = f"per-customer RMSE (totals within {tolerance:.0%} of each other)"
    label = btyd.PURCHASE_MODELS
    parts = "; ".join(f"{label[k]} total {e['predicted_purchases']:,.0f} vs actual {e['actual_purchases']:,.0f} "
                      f"({e['predicted_purchases'] / e['actual_purchases'] - 1:+.1%}), RMSE {e['rmse']:.3f}"
                      for k, e in evaluations.items())
    return PurchaseModelChoice(model=chosen, evaluations=evaluations, calibration_cutoff=calibration,
                               reason=f"{label[chosen]} chosen on {rule}: {parts}")
