"""Next best action: one action per customer from a fixed, documented policy, with the reason in that customer's
own numbers ("Opened 3 support tickets in the last 90 days, the last 12 days ago; churn risk 64%").

The rules, in order; the first that matches wins (a condition on a missing number is not met):

1. ``resolve_ticket``: a support ticket in the last 90 days, the last within 30 days, and churn risk at least
   ``warning``: an unresolved problem comes before any offer.
2. ``save_subscription``: an active subscriber with churn risk at least ``warning`` or more than 1.5 billing
   periods since the last paid charge (skipped charges come before a cancellation). It comes before win-back:
   a subscriber still on a plan is kept through the plan (skip, swap, pause), not won back.
3. ``win_back``: lapsed (churn risk at least ``critical`` or more than 120 days since the last order) and
   valuable (lifetime value in the buyers' top quartile, or the 90% upper bound of the predicted 12-month value
   in its top quartile).
4. ``offer_subscription``: no active subscription, at least 2 orders, churn risk below ``critical`` and an
   average order above the buyers' median.
5. ``invite_vip``: lifetime value or predicted 12-month value in the buyers' top decile, churn risk below
   ``warning``.
6. ``no_action``: none of the above; the reason says which cut-off the customer falls short of.

Quantile cut-offs come from a :class:`PolicyContext` built once on the whole base (:func:`policy_context`), so
scoring a few persons incrementally uses the base's cut-offs, not their own. Everything is vectorised; reasons
are formatted only for the rows of each action, and each distinct amount is formatted once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.cdp.health import HealthThresholds, churn_risk_values

__all__ = ["ACTIONS", "PolicyContext", "policy_context", "next_best_action", "REQUIRED_COLUMNS",
           "TICKET_RECENT_DAYS", "LAPSED_DAYS", "OVERDUE_PERIODS", "REPEAT_ORDERS"]

#: stable action ids (stored, compared) and their labels (shown), in the order of the rules
ACTIONS: dict[str, str] = {
    "resolve_ticket": "Resolve the support issue",
    "save_subscription": "Save the subscription",
    "win_back": "Win back",
    "offer_subscription": "Offer a subscription",
    "invite_vip": "Invite to the VIP programme",
    "no_action": "No action",
}
TICKET_RECENT_DAYS = 30
LAPSED_DAYS = 120
OVERDUE_PERIODS = 1.5
REPEAT_ORDERS = 2
REQUIRED_COLUMNS: tuple[str, ...] = (
    "churn_risk", "lifetime_value", "total_orders", "avg_order_value", "days_since_last_order",
    "subscription_status", "predicted_ltv", "predicted_ltv_high", "tickets_90d", "days_since_last_ticket",
    "charge_overdue")  # subscription_mrr, charges_failed_90d and opens_trend_90 are used in reasons when present
_CUTS = ("ltv_top_quartile", "ltv_top_decile", "predicted_ltv_top_decile", "predicted_high_top_quartile",
         "aov_median")


@dataclass(frozen=True)
class PolicyContext:
    """The cut-offs of the policy, computed on the buyers (at least one order) of the base: lifetime value's 75th
    and 90th percentiles, predicted_ltv's 90th, predicted_ltv_high's 75th and the median average order value.
    NaN (no buyers) means a condition on it is never met."""

    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    ltv_top_quartile: float = math.nan
    ltv_top_decile: float = math.nan
    predicted_ltv_top_decile: float = math.nan
    predicted_high_top_quartile: float = math.nan
    aov_median: float = math.nan
    buyers: int = 0

    def to_json(self) -> dict:
        """JSON-ready (NaN as None), for storing with the base and :meth:`from_json` at incremental scoring."""
        cuts = {k: (None if math.isnan(getattr(self, k)) else float(getattr(self, k))) for k in _CUTS}
        return {"warning": self.thresholds.warning, "critical": self.thresholds.critical, **cuts,
                "buyers": self.buyers}

    @classmethod
    def from_json(cls, obj: dict) -> PolicyContext:
        cuts = {k: math.nan if obj.get(k) is None else float(obj[k]) for k in _CUTS}
        return cls(HealthThresholds(obj["warning"], obj["critical"]), buyers=int(obj.get("buyers", 0)), **cuts)


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _quantile(x: np.ndarray, q: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.quantile(x, q)) if len(x) else math.nan


def policy_context(frame: pd.DataFrame, thresholds: HealthThresholds | None = None) -> PolicyContext:
    """The cut-offs of ``frame``'s buyers (``total_orders >= 1``), to pass to :func:`next_best_action`."""
    _check(frame)
    buyers = _col(frame, "total_orders") >= 1
    ltv, pltv, high, aov = (_col(frame, c)[buyers] for c in
                            ("lifetime_value", "predicted_ltv", "predicted_ltv_high", "avg_order_value"))
    return PolicyContext(thresholds or HealthThresholds(), _quantile(ltv, 0.75), _quantile(ltv, 0.90),
                         _quantile(pltv, 0.90), _quantile(high, 0.75), _quantile(aov, 0.5), int(buyers.sum()))


def _check(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{missing[0]}: the frame has no such column (missing: {', '.join(missing)})")


# formatting: each distinct (rounded) value is formatted once, so a million rows cost a few thousand calls

def _fmt(values: np.ndarray, fmt: Callable[[float], str], missing: str = "n/a") -> np.ndarray:
    codes, uniques = pd.factorize(values)  # NaN gets code -1, which picks the trailing ``missing``
    return np.array([fmt(float(u)) for u in uniques] + [missing], dtype=object)[codes]


def _money(x: np.ndarray) -> np.ndarray:
    return _fmt(np.round(x), lambda v: f"${v:,.0f}")


def _count(x: np.ndarray) -> np.ndarray:
    return _fmt(np.round(x), lambda v: f"{v:,.0f}")


def _risk(p: np.ndarray, lead: str = "churn risk") -> np.ndarray:
    """Whole percents rounded down (a risk shown as 60% has reached a 60% cut-off), e.g. "churn risk 64%"."""
    return _fmt(np.floor(p * 100 + 1e-9), lambda v: f"{lead} {v:.0f}%", missing=f"{lead} not scored")


def _plural(n: np.ndarray, one: str, many: str) -> np.ndarray:
    return np.where(n == 1, one, many).astype(object)


def _cut(v: float) -> str:
    return f"${v:,.0f}" if math.isfinite(v) else "n/a"


def _pct(v: float) -> str:
    return f"{v * 100:g}%"


def _when(days: np.ndarray) -> np.ndarray:
    """"the last 12 days ago", "the last 1 day ago", "the last one today"."""
    d = np.round(days)
    ago = "the last " + _count(d) + _plural(d, " day ago", " days ago")
    return np.where(d <= 0, "the last one today", ago).astype(object)


def _piece(mask: np.ndarray, text: np.ndarray | str) -> np.ndarray:
    """``"; " + text`` where ``mask``, else empty."""
    return np.where(mask, "; " + np.asarray(text, dtype=object), "").astype(object)


def _opens(c: dict[str, np.ndarray]) -> np.ndarray:
    down = _fmt(np.round(-c["opens"], 1), lambda v: f"{v:g}")
    return _piece(c["opens"] < 0, "email opens down " + down + " a month")


def _resolve_ticket(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    tickets = _count(c["tickets"]) + _plural(c["tickets"], " support ticket", " support tickets")
    return "Opened " + tickets + " in the last 90 days, " + _when(c["dslt"]) + "; " + _risk(c["risk"])


def _save_subscription(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    paying = np.where(c["mrr"] > 0, " paying " + _money(c["mrr"]) + "/month", "").astype(object)
    overdue = _fmt(np.round(c["overdue"], 1), lambda v: f"{v:g} billing periods since the last paid charge")
    failed = _count(c["failed"]) + _plural(c["failed"], " failed charge", " failed charges") + " in the last 90 days"
    return ("Active subscriber" + paying + "; " + _risk(c["risk"]) + _piece(c["overdue"] > OVERDUE_PERIODS, overdue)
            + _piece(c["failed"] > 0, failed) + _opens(c))


def _win_back(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    by_ltv = "lifetime value " + _money(c["ltv"]) + f" (buyers' top quartile from {_cut(ctx.ltv_top_quartile)})"
    by_high = ("could bring up to " + _money(c["high"]) + " in the next 12 months (90% upper bound; top quartile "
               f"from {_cut(ctx.predicted_high_top_quartile)})")
    value = np.where(c["ltv"] >= ctx.ltv_top_quartile, by_ltv, by_high).astype(object)
    last = np.where(np.isfinite(c["dslo"]), "Last ordered " + _count(c["dslo"]) + " days ago, ", "").astype(object)
    return last + _risk(c["risk"]) + "; " + value + _opens(c)


def _offer_subscription(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    lapsed = np.isin(c["status"], ["paused", "cancelled"])
    sub = np.where(lapsed, "a " + c["status"] + " subscription", "no subscription").astype(object)
    return (_count(c["orders"]) + " orders averaging " + _money(c["aov"]) + f" (buyers' median "
            f"{_cut(ctx.aov_median)}) and " + sub + "; " + _risk(c["risk"]))


def _invite_vip(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    by_ltv = "Lifetime value " + _money(c["ltv"]) + f" (buyers' top 10% from {_cut(ctx.ltv_top_decile)})"
    by_pltv = ("Predicted 12-month value " + _money(c["pltv"])
               + f" (buyers' top 10% from {_cut(ctx.predicted_ltv_top_decile)})")
    return np.where(c["ltv"] >= ctx.ltv_top_decile, by_ltv, by_pltv).astype(object) + "; " + _risk(c["risk"])


def _no_action(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    """Which cut-off the customer falls short of: not scored, healthy but not a VIP, at risk but of too little
    value for a win-back, or valuable and at risk but neither critical nor lapsed."""
    t = ctx.thresholds
    low_value = ~((c["ltv"] >= ctx.ltv_top_quartile) | (c["high"] >= ctx.predicted_high_top_quartile))
    case = np.select([~np.isfinite(c["risk"]), c["risk"] < t.warning, low_value], [0, 1, 2], 3)
    out = np.empty(len(case), dtype=object)
    for k in range(4):
        rows = np.flatnonzero(case == k)
        if len(rows):
            out[rows] = _NO_ACTION[k]({key: v[rows] for key, v in c.items()}, ctx)
    return out


def _values(c: dict[str, np.ndarray]) -> np.ndarray:
    return ("lifetime value " + _money(np.nan_to_num(c["ltv"])) + ", predicted 12-month value "
            + _money(np.nan_to_num(c["pltv"])))


def _unscored(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    return (_count(np.nan_to_num(c["orders"])) + _plural(c["orders"], " order", " orders")
            + " so far and no churn risk score: nothing to act on yet")


def _healthy(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    return (_risk(c["risk"], "Churn risk") + f" is below the {_pct(ctx.thresholds.warning)} warning level; "
            + _values(c) + f": below the VIP cut-offs (buyers' top 10% from {_cut(ctx.ltv_top_decile)} lifetime "
            f"value or {_cut(ctx.predicted_ltv_top_decile)} predicted)")


def _low_value(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    return (_risk(c["risk"], "Churn risk") + "; " + _values(c) + f": below the win-back cut-off (buyers' top "
            f"quartile from {_cut(ctx.ltv_top_quartile)} lifetime value); no recent support ticket or active "
            "subscription")


def _not_lapsed(c: dict[str, np.ndarray], ctx: PolicyContext) -> np.ndarray:
    last = np.where(np.isfinite(c["dslo"]), " and the last order was " + _count(c["dslo"])
                    + f" days ago (win-back after {LAPSED_DAYS})", "").astype(object)
    return (_risk(c["risk"], "Churn risk") + f" is below the {_pct(ctx.thresholds.critical)} win-back level"
            + last + "; no recent support ticket or active subscription")


_NO_ACTION = (_unscored, _healthy, _low_value, _not_lapsed)


_REASONS: dict[str, Callable[[dict[str, np.ndarray], PolicyContext], np.ndarray]] = {
    "resolve_ticket": _resolve_ticket, "save_subscription": _save_subscription, "win_back": _win_back,
    "offer_subscription": _offer_subscription, "invite_vip": _invite_vip, "no_action": _no_action,
}


def _rules(c: dict[str, np.ndarray], ctx: PolicyContext) -> list[np.ndarray]:
    """One mask per action but ``no_action``, in the order of :data:`ACTIONS`."""
    t, risk, ltv, pltv, high = ctx.thresholds, c["risk"], c["ltv"], c["pltv"], c["high"]
    active = c["status"] == "active"
    valuable = ((ltv >= ctx.ltv_top_quartile) & (ltv > 0)) | ((high >= ctx.predicted_high_top_quartile) & (high > 0))
    vip = ((ltv >= ctx.ltv_top_decile) & (ltv > 0)) | ((pltv >= ctx.predicted_ltv_top_decile) & (pltv > 0))
    return [
        (c["tickets"] >= 1) & (c["dslt"] <= TICKET_RECENT_DAYS) & (risk >= t.warning),
        active & ((risk >= t.warning) | (c["overdue"] > OVERDUE_PERIODS)),
        ((risk >= t.critical) | (c["dslo"] > LAPSED_DAYS)) & valuable,
        ~active & (c["orders"] >= REPEAT_ORDERS) & (risk < t.critical) & (c["aov"] > ctx.aov_median),
        vip & (risk < t.warning),
    ]


def next_best_action(frame: pd.DataFrame, context: PolicyContext | None = None) -> pd.DataFrame:
    """``next_action`` (an :data:`ACTIONS` id) and ``next_action_reason`` per row of ``frame``, by the rules of
    the module docstring. ``context`` defaults to :func:`policy_context` of ``frame`` itself; pass the base's
    context when scoring only a few persons."""
    _check(frame)
    ctx = context or policy_context(frame)
    c = {"risk": churn_risk_values(frame)}
    for key, col in (("ltv", "lifetime_value"), ("orders", "total_orders"), ("aov", "avg_order_value"),
                     ("dslo", "days_since_last_order"), ("pltv", "predicted_ltv"), ("high", "predicted_ltv_high"),
                     ("tickets", "tickets_90d"), ("dslt", "days_since_last_ticket"), ("overdue", "charge_overdue"),
                     ("mrr", "subscription_mrr"), ("failed", "charges_failed_90d"), ("opens", "opens_trend_90")):
        c[key] = _col(frame, col)
    c["status"] = frame["subscription_status"].astype("string").str.lower().fillna("").to_numpy(dtype=object)
    rules = _rules(c, ctx)
    names = np.array(list(ACTIONS), dtype=object)
    code = np.select(rules, np.arange(len(rules)), len(rules))
    reason = np.empty(len(frame), dtype=object)
    for i, action in enumerate(names):
        rows = np.flatnonzero(code == i)
        if len(rows):
            reason[rows] = _REASONS[action]({k: v[rows] for k, v in c.items()}, ctx)
    return pd.DataFrame({"next_action": pd.Series(names[code], index=frame.index, dtype=object),
                         "next_action_reason": pd.Series(reason, index=frame.index, dtype=object)})
