"""Revenue opportunities: who (a segment rule), how much (expected incremental margin over the next 12 months)
and on which assumptions, each editable within its bounds.

Each definition in :data:`OPPORTUNITIES` has a rule in the segment rule language (churn risk in percent, 0-100,
as rules compare it; money in $) whose members the caller selects with the segment engine, and a valuation of
those members. Opportunities are ranked by expected incremental dollars, not by risk. They may share customers
(a lapsed VIP is in both ``win_back`` and ``prevent_churn``), so their dollars do not add up.

What each low-high range covers: the opportunity's rate (conversion, win-back, save) from half to 1.5 times its
value (at most 100%); for ``prevent_churn`` also each member's 90% predictive interval of 12-month value (low rate
with every ``predicted_ltv_low``, high rate with every ``predicted_ltv_high``; adding up individual bounds is
wider than a 90% interval of the total). Order values, past spend and the sBG retention are taken as they are;
no range covers model error in churn risk or whether the assumed rates are right in the first place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from core.cdp.btyd import ModelFit, sbg_survival
from core.cdp.health import HealthThresholds, churn_risk_values

__all__ = ["AssumptionSpec", "OpportunityDef", "OPPORTUNITIES", "Assumptions", "Opportunity", "Retention",
           "expected_paid_periods", "sbg_retention", "data_defaults", "opportunity_rule", "value_opportunity",
           "rank_opportunities", "RATE_SPREAD", "DAYS_PER_YEAR"]

DAYS_PER_YEAR = 365.25
RATE_SPREAD = 0.5  # the ranges move the rate assumption by +-50%
#: billing interval in days -> expected charges a new subscriber pays over the next 12 months (a charge whose
#: period ends after the horizon counts the share inside it)
Retention = Callable[[float], float]
_DEFAULT = HealthThresholds()
_WIN_BACK_RISK = round(_DEFAULT.critical * 100)  # percent, as rules compare churn risk
_AT_RISK = round(_DEFAULT.warning * 100)


@dataclass(frozen=True)
class AssumptionSpec:
    """An editable assumption: ``default`` None means it comes from the data (:func:`data_defaults`)."""

    name: str
    label: str
    unit: str
    default: float | None
    min: float
    max: float


def _rate(name: str, label: str, default: float) -> AssumptionSpec:
    return AssumptionSpec(name, label, "%", default, 0.0, 100.0)


_MARGIN = _rate("margin", "Gross margin", 60.0)


@dataclass(frozen=True)
class OpportunityDef:
    """One opportunity: ``rule(values)`` gives its segment rule, ``value(members, values, retention)`` its
    valuation; ``columns`` are the member columns the valuation reads."""

    id: str
    title: str
    assumptions: tuple[AssumptionSpec, ...]
    columns: tuple[str, ...]
    rule: Callable[[Mapping[str, float]], dict] = field(repr=False)
    value: Callable[..., dict] = field(repr=False)


@dataclass(frozen=True)
class Assumptions:
    """Checked assumption values of one opportunity (:meth:`build`)."""

    opportunity: str
    values: Mapping[str, float]  # read-only

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @classmethod
    def build(cls, opportunity_id: str, overrides: Mapping[str, Any] | None = None,
              base_defaults: Mapping[str, Mapping[str, float]] | None = None) -> Assumptions:
        """Defaults (``base_defaults[opportunity_id]``, from :func:`data_defaults`, for those taken from the data)
        with ``overrides`` on top. ``ValueError`` naming the assumption when it is unknown, missing, not a number
        or outside [min, max]."""
        spec = _definition(opportunity_id)
        known = {a.name: a for a in spec.assumptions}
        overrides = dict(overrides or {})
        for name in overrides:
            if name not in known:
                raise ValueError(f"{name}: unknown assumption of {opportunity_id} (known: {', '.join(known)})")
        data = dict((base_defaults or {}).get(opportunity_id, {}))
        values = {}
        for name, a in known.items():
            v = overrides.get(name, data.get(name, a.default))
            if v is None:
                raise ValueError(f"{name}: no value; it is computed from the customer base (data_defaults) "
                                 "or must be given")
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(v) \
                    or not a.min <= v <= a.max:
                raise ValueError(f"{name}: expected a number from {a.min:g} to {a.max:g} ({a.unit}), got {v!r}")
            values[name] = float(v)
        return cls(opportunity_id, values)

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def to_json(self) -> list[dict]:
        """``[{name, label, value, unit, min, max}]`` in the definition's order."""
        return [{"name": a.name, "label": a.label, "value": self.values[a.name], "unit": a.unit, "min": a.min,
                 "max": a.max} for a in _definition(self.opportunity).assumptions]


@dataclass(frozen=True)
class Opportunity:
    """A valued opportunity; ``dollars`` is expected incremental margin over the next 12 months, ``low``/``high``
    the range described by ``range_basis`` (see the module docstring), ``figures`` the numbers behind it."""

    id: str
    title: str
    description: str
    customers: int
    dollars: float
    low: float
    high: float
    range_basis: str
    assumptions: tuple[dict, ...]
    rule: dict
    figures: dict[str, float]

    def to_json(self) -> dict:
        return {**asdict(self), "assumptions": [dict(a) for a in self.assumptions]}


# retention

def _paid(params: ModelFit | Sequence[float], charges: float, step: float) -> float:
    """Expected charges paid among the first ``charges`` (fractional) of a new subscriber billed every ``step``
    sBG periods: charge k (at k * step periods) is paid while still subscribed, ``S(k * step)``."""
    if isinstance(params, ModelFit):
        params = params.params
    k = np.arange(math.ceil(charges), dtype=float)
    return float(np.sum(sbg_survival(tuple(params), k * step) * np.minimum(1.0, charges - k)))


def expected_paid_periods(params: ModelFit | Sequence[float], periods: float) -> float:
    """Expected billing periods a new subscriber pays for among the first ``periods``: ``sum_t S(t)`` over
    t = 0, 1, ... (the first charge is paid, period t needs t renewals), sBG survival ``S``. A fractional last
    period counts its fraction (revenue recognised within the horizon)."""
    if isinstance(periods, bool) or not math.isfinite(periods) or periods < 0:
        raise ValueError(f"periods: expected a number >= 0, got {periods!r}")
    return _paid(params, periods, 1.0)


def sbg_retention(params: ModelFit | Sequence[float], period_days: float = 30.0) -> Retention:
    """The :data:`Retention` of an sBG fitted on periods of ``period_days`` (``(alpha, beta)`` or the fit):
    billed every ``interval_days``, a subscriber pays ``365.25 / interval_days`` charges a year, charge k while
    still subscribed after ``k * interval_days / period_days`` periods (the sBG survival read at fractional
    periods when the interval is not the model's period). Equals :func:`expected_paid_periods` when the
    interval is the period."""
    if not period_days > 0:
        raise ValueError(f"period_days: expected a number of days > 0, got {period_days!r}")
    return lambda interval_days: _paid(params, DAYS_PER_YEAR / interval_days, interval_days / period_days)


# helpers

def _money(v: float) -> str:
    return f"${v:,.0f}"


def _count(v: float) -> str:
    return f"{v:,.1f}" if v < 10 else f"{v:,.0f}"


def _pct(v: float) -> str:
    return f"{v:g}%"


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isfinite(x), x, 0.0)


def _all(*conditions: tuple[str, str, Any]) -> dict:
    return {"all": [{"field": f, "op": op, "value": v} for f, op, v in conditions]}


# valuations: each gives the revenue its rate applies to (``base``; ``base_low``/``base_high`` for the range),
# the name of that rate, who the members are and what the numbers mean, in words built from them

def _convert_value(m: pd.DataFrame, v: Mapping[str, float], retention: Retention | None) -> dict:
    if retention is None:
        raise ValueError("retention: convert_to_subscription needs the sBG retention of the workspace's "
                         "subscribers (sbg_retention)")
    periods = DAYS_PER_YEAR / v["interval_days"]
    paid = float(retention(v["interval_days"]))
    if not math.isfinite(paid) or not 0 <= paid <= periods + 1e-9:
        raise ValueError(f"retention: expected paid charges from 0 to {periods:.4g} a year, got {paid!r}")
    aov = _col(m, "avg_order_value")
    revenue = float(aov.sum()) * paid  # if every member subscribed: one order's value per paid period
    mean_aov = float(aov.mean()) if len(m) else 0.0
    monthly, months = mean_aov * 30 / v["interval_days"], paid * v["interval_days"] / 30
    subscribers = _count(len(m) * v["conversion_rate"] / 100)
    premise = (f"average {_money(mean_aov)} an order; if {_pct(v['conversion_rate'])} subscribe ({subscribers} "
               f"expected subscribers), pay that every {v['interval_days']:g} days ({_money(monthly)} a month) "
               f"and stay {months:.1f} of the next 12 months on average")
    return {"base": revenue, "rate": "conversion_rate", "subject": "repeat buyers without an active subscription",
            "premise": premise, "verb": "adds", "figures": {
                "avg_order_value": mean_aov, "monthly_value": monthly, "periods_in_12_months": periods,
                "expected_paid_periods": paid, "expected_months": months}}


def _yearly_spend(m: pd.DataFrame) -> np.ndarray:
    """Past revenue per year: lifetime value / max(tenure in years, 1), tenure = days from the first order to
    now (last order - first order + days since the last order); unknown tenure counts one year."""
    first = pd.to_datetime(m["first_order_date"], utc=True)
    last = pd.to_datetime(m["last_order_date"], utc=True)
    days = (last - first).dt.days.to_numpy(dtype=float, na_value=np.nan) + _col(m, "days_since_last_order")
    years = np.where(np.isfinite(days), days / DAYS_PER_YEAR, 1.0)
    return _col(m, "lifetime_value") / np.maximum(years, 1.0)


def _win_back_value(m: pd.DataFrame, v: Mapping[str, float], retention: Retention | None) -> dict:
    yearly = float(_yearly_spend(m).sum())
    each = yearly / len(m) if len(m) else 0.0
    return {"base": yearly, "rate": "win_back_rate", "verb": "adds",
            "subject": f"customers with churn risk of at least {_WIN_BACK_RISK}% and lifetime value of at least "
                       f"{_money(v['min_ltv'])}",
            "premise": f"used to spend {_money(each)} a year each; if {_pct(v['win_back_rate'])} come back at "
                       "that pace", "figures": {"yearly_spend": yearly, "avg_yearly_spend": each}}


def _prevent_value(m: pd.DataFrame, v: Mapping[str, float], retention: Retention | None) -> dict:
    p = np.nan_to_num(churn_risk_values(m))
    loss, low, high = (float(np.sum(p * _col(m, c))) for c in ("predicted_ltv", "predicted_ltv_low",
                                                                 "predicted_ltv_high"))
    avg = float(p.mean()) if len(m) else 0.0
    return {"base": loss, "base_low": low, "base_high": high, "rate": "save_rate", "verb": "keeps",
            "subject": f"customers with churn risk of at least {_AT_RISK}% and predicted 12-month value of at "
                       f"least {_money(v['min_predicted_ltv'])}",
            "premise": f"(churn risk {avg * 100:.0f}% on average) put {_money(loss)} of expected revenue at stake "
                       f"(90% intervals: {_money(low)} to {_money(high)}); if {_pct(v['save_rate'])} of it is saved",
            "figures": {"expected_loss": loss, "expected_loss_low": low, "expected_loss_high": high,
                        "avg_churn_risk": avg}}


OPPORTUNITIES: dict[str, OpportunityDef] = {d.id: d for d in (
    OpportunityDef("convert_to_subscription", "Convert repeat buyers to subscribers", (
        _rate("conversion_rate", "Conversion rate", 10.0),
        AssumptionSpec("interval_days", "Billing interval", "days", 30.0, 1.0, 365.0),
        _MARGIN), ("avg_order_value",),
        lambda v: _all(("total_orders", "gte", 2), ("subscription_status", "ne", "active")), _convert_value),
    OpportunityDef("win_back", "Win back high-value churned customers", (
        _rate("win_back_rate", "Win-back rate", 15.0),
        AssumptionSpec("min_ltv", "Minimum lifetime value", "$", None, 0.0, 1e9),
        _MARGIN), ("lifetime_value", "first_order_date", "last_order_date", "days_since_last_order"),
        lambda v: _all(("churn_risk", "gte", _WIN_BACK_RISK), ("lifetime_value", "gte", v["min_ltv"])),
        _win_back_value),
    OpportunityDef("prevent_churn", "Prevent churn of valuable at-risk customers", (
        _rate("save_rate", "Save rate", 25.0),
        AssumptionSpec("min_predicted_ltv", "Minimum predicted 12-month value", "$", 100.0, 0.0, 1e9),
        _MARGIN), ("churn_risk", "predicted_ltv", "predicted_ltv_low", "predicted_ltv_high"),
        lambda v: _all(("churn_risk", "gte", _AT_RISK), ("predicted_ltv", "gte", v["min_predicted_ltv"])),
        _prevent_value),
)}


def _definition(opportunity_id: str) -> OpportunityDef:
    if opportunity_id not in OPPORTUNITIES:
        raise ValueError(f"opportunity: unknown id {opportunity_id!r} (known: {', '.join(OPPORTUNITIES)})")
    return OPPORTUNITIES[opportunity_id]


def _assumptions(opportunity_id: str, assumptions: Assumptions | Mapping[str, Any] | None) -> Assumptions:
    if isinstance(assumptions, Assumptions):
        if assumptions.opportunity != opportunity_id:
            raise ValueError(f"assumptions: given for {assumptions.opportunity}, not {opportunity_id}")
        return assumptions
    return Assumptions.build(opportunity_id, assumptions)


def data_defaults(base: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Assumption defaults taken from the whole customer base: ``win_back.min_ltv`` = the 75th percentile of
    lifetime value among buyers (``total_orders >= 1``; 0 without buyers). Pass to :meth:`Assumptions.build`."""
    buyers = _col(base, "total_orders") >= 1
    ltv = _col(base, "lifetime_value")[buyers]
    return {"win_back": {"min_ltv": float(np.quantile(ltv, 0.75)) if len(ltv) else 0.0}}


def opportunity_rule(opportunity_id: str, assumptions: Assumptions | Mapping[str, Any] | None = None) -> dict:
    """The segment rule selecting the members of ``opportunity_id`` under ``assumptions`` (checked
    :class:`Assumptions`, or a mapping of overrides of the defaults)."""
    return _definition(opportunity_id).rule(_assumptions(opportunity_id, assumptions).values)


def value_opportunity(opportunity_id: str, members: pd.DataFrame,
                      assumptions: Assumptions | Mapping[str, Any] | None = None,
                      retention: Retention | None = None) -> Opportunity:
    """Value the opportunity on ``members`` (the scored customers its rule selects; not filtered again).
    ``retention`` is needed by ``convert_to_subscription`` only (:func:`sbg_retention`)."""
    spec = _definition(opportunity_id)
    a = _assumptions(opportunity_id, assumptions)
    missing = [c for c in spec.columns if c not in members.columns]
    if missing:
        raise ValueError(f"{missing[0]}: the members frame has no such column (missing: {', '.join(missing)})")
    r = spec.value(members, a.values, retention)
    rate, margin = a[r["rate"]] / 100, a["margin"] / 100
    lo, hi = rate * (1 - RATE_SPREAD), min(rate * (1 + RATE_SPREAD), 1.0)
    dollars = r["base"] * rate * margin
    low, high = r.get("base_low", r["base"]) * lo * margin, r.get("base_high", r["base"]) * hi * margin
    label = next(x.label for x in spec.assumptions if x.name == r["rate"]).lower()
    basis = f"{label} {_pct(round(lo * 100, 2))} to {_pct(round(hi * 100, 2))}"
    if "base_low" in r:
        basis += " with the members' 90% predictive intervals of 12-month value"
    n = len(members)
    text = (f"{n:,} {r['subject']} {r['premise']}, at a {_pct(a['margin'])} margin that {r['verb']} "
            f"{_money(dollars)} over the next 12 months (range {_money(low)} to {_money(high)})." if n else
            f"No {r['subject']} right now (0 customers), so nothing to gain.")
    return Opportunity(id=spec.id, title=spec.title, description=text, customers=n, dollars=dollars, low=low,
                       high=high, range_basis=basis, assumptions=tuple(a.to_json()), rule=spec.rule(a.values),
                       figures=r["figures"])


def rank_opportunities(opportunities: Sequence[Opportunity]) -> list[Opportunity]:
    """Largest expected incremental dollars first (ties by id, so the order is stable)."""
    return sorted(opportunities, key=lambda o: (-o.dollars, o.id))
