"""Subscription charges as a schedule, not as purchases: the recurring part of a customer's lifetime value.

A subscriber is charged on her schedule until she cancels; a buy-till-you-die model (BG/NBD, MBG/NBD) sees the
same orders as a Poisson process of unusually regular purchases and mispredicts both her and, through the shared
parameters, everyone else. So a base with subscriptions is split in two:

* **one-off orders**: every order day that is not a paid subscription charge (each customer's first purchase day
  is kept, so every buyer stays in the summary); the purchase and spend models are fitted on them alone;
* **recurring charges** of each active subscription: the charges due within the horizon, ``t_1`` = the interval
  after the last paid charge (now when that is past), then one interval apart, each paid if she has not cancelled
  by then: ``S(t) = (1 - c)^(t / 90)`` with ``c`` her probability of cancelling within 90 days (the subscription
  churn classifier; without one, the sBG retention at her tenure) — a constant hazard over the horizon.

Expected charges are ``rho_g * sum_k S(t_k)``, with a factor ``rho_g`` per group (on schedule, or overdue: more than
1.5 intervals since the last paid charge, i.e. skipping) measured on backtests: at monthly cutoffs over the year
that ends one horizon back, the charges that the subscribers active then really paid in the following horizon,
divided by what the schedule and the classifier predicted for them, pooled and shrunk toward 1 by
:data:`PSEUDO_CHARGES`. It says how often a skipper resumes, which neither
the schedule nor a cancellation model knows. What this cannot know: a price change, a plan switch, a skip the
customer has scheduled but not yet made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.cdp import btyd

__all__ = ["CHARGE_EVENT", "OVERDUE_PERIODS", "PSEUDO_CHARGES", "Recurring", "RecurringCalibration", "charge_days",
           "one_off_days", "recurring_schedule", "calibrate_recurring", "sbg_cancel_90"]

CHARGE_EVENT = "charge_paid"
OVERDUE_PERIODS = 1.5  # more billing intervals than this since the last paid charge: skipping
PSEUDO_CHARGES = 5.0  # the factor's prior: worth 5 expected charges at a factor of 1
WINDOW_DAYS = 90.0  # the cancellation probability's window
MAX_CHARGES = 400  # enough for a daily charge over a year


def charge_days(events: pd.DataFrame) -> pd.DataFrame:
    """Paid subscription charges as ``person_id, day, amount`` (one row per person and UTC day, amounts summed)."""
    ch = events[(events["type"] == CHARGE_EVENT) & events["person_id"].notna()]
    day = pd.to_datetime(ch["time"], utc=True).dt.tz_localize(None).dt.normalize()
    out = pd.DataFrame({"person_id": ch["person_id"].to_numpy(), "day": day.to_numpy(),
                        "amount": pd.to_numeric(ch["amount"], errors="coerce").to_numpy(dtype=float)})
    return out.groupby(["person_id", "day"], as_index=False, sort=False)["amount"].sum()


def one_off_days(daily: pd.DataFrame, charges: pd.DataFrame, customer_col: str = "customer") -> pd.DataFrame:
    """``daily`` order totals without the days of a paid charge, except each customer's first purchase day."""
    if charges.empty:
        return daily
    first = daily.groupby(customer_col)["day"].transform("min")
    key = pd.MultiIndex.from_arrays([daily[customer_col].to_numpy(), pd.to_datetime(daily["day"]).to_numpy()])
    paid = pd.MultiIndex.from_arrays([charges["person_id"].to_numpy(), pd.to_datetime(charges["day"]).to_numpy()])
    return daily[~key.isin(paid) | (daily["day"] == first).to_numpy()]


def sbg_cancel_90(retention: btyd.ModelFit, tenure_days: np.ndarray, period_days: float) -> np.ndarray:
    """P(cancel within 90 days) of a subscriber ``tenure_days`` old under the sBG ``retention`` (per period)."""
    s = np.floor(np.nan_to_num(np.asarray(tenure_days, dtype=float), nan=0.0) / period_days)
    ahead = WINDOW_DAYS / period_days
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = btyd.sbg_survival(retention.params, s + ahead) / btyd.sbg_survival(retention.params, s)
    return np.clip(1.0 - np.nan_to_num(keep, nan=1.0), 0.0, 1.0)


@dataclass(frozen=True)
class RecurringCalibration:
    """The per-group factors and the backtest they come from (expected charges before the factor, actual)."""

    cutoffs: list[str]
    on_schedule: float
    overdue: float
    expected: dict[str, float]
    actual: dict[str, float]
    subscribers: dict[str, int]

    def factor(self, overdue: np.ndarray) -> np.ndarray:
        return np.where(overdue, self.overdue, self.on_schedule)


@dataclass
class Recurring:
    """The recurring charges ahead of each customer (rows aligned with a summary; non-subscribers have none)."""

    times: np.ndarray  # (n, K) days from now to each scheduled charge, inf padded
    survival: np.ndarray  # (n, K) P(not cancelled by that charge)
    amount: np.ndarray  # (n,) the charge's amount
    factor: np.ndarray  # (n,) the group's calibration factor
    active: np.ndarray  # (n,) bool: an active subscriber
    overdue: np.ndarray  # (n,) bool: skipping

    def within(self, horizon_days: float) -> np.ndarray:
        return self.times < horizon_days

    def expected(self, horizon_days: float, discount_rate_annual: float = 0.0) -> np.ndarray:
        """Expected charges within the horizon (discounted at each charge's time when a rate is given)."""
        disc = (1.0 + discount_rate_annual) ** (-np.where(np.isfinite(self.times), self.times, 0.0) / 365.25)
        return self.factor * np.where(self.within(horizon_days), self.survival * disc, 0.0).sum(axis=1)

    def p_none(self, horizon_days: float) -> np.ndarray:
        """P(no charge within the horizon): the charges she lives to see, each kept with min(factor, 1)."""
        s = np.where(self.within(horizon_days), self.survival, 0.0)
        nxt = np.concatenate([s[:, 1:], np.zeros((len(s), 1))], axis=1)
        p_n = np.concatenate([1.0 - s[:, :1], s - nxt], axis=1)  # P(exactly n charges), n = 0..K
        keep = np.clip(self.factor, 0.0, 1.0)[:, None]
        return (p_n * (1.0 - keep) ** np.arange(p_n.shape[1])[None, :]).sum(axis=1)

    def sample(self, rows: np.ndarray, horizon_days: float, n_draws: int, rng: np.random.Generator,
               discount_rate_annual: float = 0.0) -> np.ndarray:
        """Simulated recurring revenue of ``rows`` (n_rows, n_draws): cancellation by one uniform per draw, each
        charge then kept with min(factor, 1) and scaled by max(factor, 1)."""
        t, s = self.times[rows], np.where(self.within(horizon_days)[rows], self.survival[rows], 0.0)
        u = rng.random((len(rows), n_draws))
        disc = (1.0 + discount_rate_annual) ** (-np.where(np.isfinite(t), t, 0.0) / 365.25)
        f = self.factor[rows]
        out = np.zeros((len(rows), n_draws))
        for k in range(s.shape[1]):
            lived = u < s[:, k:k + 1]
            if not lived.any():  # survival only falls: no draw lives to a later charge either
                break
            paid = lived & (rng.random((len(rows), n_draws)) < np.clip(f, 0.0, 1.0)[:, None])
            out += paid * (disc[:, k] * np.maximum(f, 1.0) * self.amount[rows])[:, None]
        return out


def recurring_schedule(features: pd.DataFrame, charges: pd.DataFrame, cancel_90: np.ndarray,
                       horizon_days: float, calibration: RecurringCalibration | None = None) -> Recurring:
    """The charges ahead of each person of ``features`` (churn features at the scoring moment: ``sub_active``,
    ``sub_interval_days``, ``days_since_last_charge``, ``sub_tenure_days``, ``sub_mrr``), with her 90-day
    cancellation probability ``cancel_90`` (aligned; NaN: none known, nothing charged)."""
    n = len(features)
    interval = features["sub_interval_days"].to_numpy(dtype=float)
    since = features["days_since_last_charge"].fillna(features["sub_tenure_days"]).to_numpy(dtype=float)
    c = np.asarray(cancel_90, dtype=float)
    active = (features["sub_active"].to_numpy(dtype=float) > 0) & np.isfinite(interval) & (interval > 0) \
        & np.isfinite(since) & np.isfinite(c)
    overdue = active & (since / np.where(interval > 0, interval, 1.0) > OVERDUE_PERIODS)
    iv = np.where(active, interval, np.inf)
    first = np.where(active, np.clip(iv - since, 0.0, None), np.inf)
    k_max = int(min(MAX_CHARGES, np.ceil(horizon_days / iv[active].min()) + 1)) if active.any() else 1
    with np.errstate(invalid="ignore"):  # inf x 0 for non-subscribers
        times = first[:, None] + np.arange(k_max)[None, :] * iv[:, None]
    times = np.where(np.isfinite(times), times, np.inf)
    hazard = np.where(active, np.clip(c, 0.0, 1.0 - 1e-12), 1.0)
    with np.errstate(invalid="ignore"):
        survival = np.where(np.isfinite(times), (1.0 - hazard[:, None]) ** (np.minimum(times, 1e9) / WINDOW_DAYS),
                            0.0)
    last = charges.sort_values("day").groupby("person_id")["amount"].last()
    amount = last.reindex(features.index).to_numpy(dtype=float)
    fallback = features["sub_mrr"].to_numpy(dtype=float) * np.where(np.isfinite(interval), interval, 30.0) / 30.0
    amount = np.where(np.isfinite(amount) & (amount > 0), amount, fallback)
    factor = np.ones(n) if calibration is None else calibration.factor(overdue)
    return Recurring(times=times, survival=survival, amount=np.nan_to_num(amount), factor=factor, active=active,
                     overdue=overdue)


def calibrate_recurring(backtests: list[tuple[pd.Timestamp, pd.DataFrame, np.ndarray]], charges: pd.DataFrame,
                        horizon_days: float) -> RecurringCalibration:
    """Factors pooled over backtests: each a cutoff, the churn features at it of the subscribers active then and
    their 90-day cancellation probabilities; ``charges`` (every paid charge) say what they paid in the horizon
    after. Pooling several cutoffs keeps one unusual quarter from setting the factor."""
    exp = {"on_schedule": 0.0, "overdue": 0.0}
    act, cnt = dict(exp), {"on_schedule": 0, "overdue": 0}
    for cutoff, features, cancel_90 in backtests:
        sched = recurring_schedule(features, charges, cancel_90, horizon_days)
        expected = np.where(sched.within(horizon_days), sched.survival, 0.0).sum(axis=1)
        start = cutoff.tz_convert("UTC").tz_localize(None).normalize() if cutoff.tzinfo else cutoff.normalize()
        window = charges[(charges["day"] >= start) & (charges["day"] < start + pd.Timedelta(days=horizon_days))]
        paid = window.groupby("person_id").size().reindex(features.index, fill_value=0).to_numpy(dtype=float)
        for name, mask in (("on_schedule", sched.active & ~sched.overdue), ("overdue", sched.overdue)):
            exp[name] += float(expected[mask].sum())
            act[name] += float(paid[mask].sum())
            cnt[name] += int(mask.sum())
    factor = {k: (act[k] + PSEUDO_CHARGES) / (exp[k] + PSEUDO_CHARGES) for k in exp}
    cutoffs = sorted(c.date().isoformat() for c, _, _ in backtests)
    return RecurringCalibration(cutoffs=cutoffs, on_schedule=factor["on_schedule"], overdue=factor["overdue"],
                                expected={k: round(v, 2) for k, v in exp.items()}, actual=act, subscribers=cnt)
