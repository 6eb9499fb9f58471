"""Opportunities: each rule is run through the pandas reference evaluator of the rule language on a planted
frame, so the members and the dollars are checked together against values computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.cdp.fields import FIELD_BY_NAME
from core.cdp.opportunities import (
    OPPORTUNITIES,
    Assumptions,
    data_defaults,
    expected_paid_periods,
    opportunity_rule,
    rank_opportunities,
    sbg_retention,
    value_opportunity,
)
from core.cdp.segments import fields_used, parse_rule
from tests.core.cdp.segment_reference import Reference

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
COLUMNS = {"person_id": "", "lifetime_value": 0.0, "total_orders": 0, "avg_order_value": np.nan,
           "first_order_date": pd.NaT, "last_order_date": pd.NaT, "days_since_last_order": np.nan,
           "subscription_status": "none", "churn_risk": np.nan, "predicted_ltv": 0.0, "predicted_ltv_low": 0.0,
           "predicted_ltv_high": 0.0}


def _frame(rows: list[dict]) -> pd.DataFrame:
    f = pd.DataFrame([{**COLUMNS, **r} for r in rows])
    for c in ("first_order_date", "last_order_date"):
        f[c] = pd.to_datetime(f[c], utc=True)
    return f


def _members(frame: pd.DataFrame, rule: dict) -> pd.DataFrame:
    empty_activity = pd.DataFrame({c: [] for c in ("person_id", "event", "day", "source", "n")})
    empty_props = pd.DataFrame({c: [] for c in ("person_id", "event", "day", "prop", "value", "n")})
    ids = Reference(frame, empty_activity, empty_props, None, AS_OF).members(rule)
    return frame[frame["person_id"].isin(ids)]


# convert_to_subscription ---------------------------------------------------------------------------------------

CONVERT = _frame([
    {"person_id": "c1", "total_orders": 2, "avg_order_value": 50.0, "subscription_status": "none"},
    {"person_id": "c2", "total_orders": 5, "avg_order_value": 100.0, "subscription_status": "cancelled"},
    {"person_id": "c3", "total_orders": 3, "avg_order_value": 150.0, "subscription_status": "paused"},
    {"person_id": "x_active", "total_orders": 9, "avg_order_value": 500.0, "subscription_status": "active"},
    {"person_id": "x_once", "total_orders": 1, "avg_order_value": 900.0, "subscription_status": "none"},
    {"person_id": "x_never", "total_orders": 0},
])


def test_convert_members_and_dollars_by_hand():
    rule = opportunity_rule("convert_to_subscription")
    members = _members(CONVERT, rule)
    assert set(members["person_id"]) == {"c1", "c2", "c3"}
    seen = []

    def retention(interval_days: float) -> float:
        seen.append(interval_days)
        return 6.0

    o = value_opportunity("convert_to_subscription", members, None, retention)
    assert seen == [30.0]
    # (50 + 100 + 150) per charge x 6 paid charges x 10% conversion x 60% margin
    assert o.dollars == pytest.approx(300 * 6 * 0.10 * 0.60)
    assert (o.low, o.high) == (pytest.approx(300 * 6 * 0.05 * 0.6), pytest.approx(300 * 6 * 0.15 * 0.6))
    assert o.customers == 3 and o.rule == rule
    assert o.range_basis == "conversion rate 5% to 15%"
    assert o.description.startswith("3 repeat buyers without an active subscription average $100 an order; if 10% "
                                    "subscribe (0.3 expected subscribers), pay that every 30 days ($100 a month)")
    assert "$108 over the next 12 months (range $54 to $162)" in o.description


def test_convert_with_sbg_retention_and_a_quarterly_interval():
    # sBG(alpha=1, beta=3): S(t) = 3 / (3 + t); a 91.3125-day interval is exactly 4 periods a year
    members = _members(CONVERT, opportunity_rule("convert_to_subscription"))
    a = Assumptions.build("convert_to_subscription", {"interval_days": 91.3125, "conversion_rate": 20, "margin": 50})
    o = value_opportunity("convert_to_subscription", members, a, sbg_retention((1.0, 3.0), period_days=91.3125))
    paid = 1 + 3 / 4 + 3 / 5 + 3 / 6
    assert o.figures["expected_paid_periods"] == pytest.approx(paid)
    assert o.dollars == pytest.approx(300 * paid * 0.20 * 0.50)
    assert o.high == pytest.approx(300 * paid * 0.30 * 0.50)


def test_retention_of_a_monthly_model_billed_every_two_months():
    # charges at months 0, 2, ..., 10 and a 12th-month one of which 0.0875 of its period lies in the year
    paid = sbg_retention((1.0, 3.0), period_days=30)(60)
    assert paid == pytest.approx(1 + 3 / 5 + 3 / 7 + 3 / 9 + 3 / 11 + 3 / 13 + (365.25 / 60 - 6) * 3 / 15)
    assert sbg_retention((1.0, 3.0), period_days=30)(30) == pytest.approx(expected_paid_periods((1.0, 3.0), 12.175))
    with pytest.raises(ValueError, match="^period_days:"):
        sbg_retention((1.0, 3.0), period_days=0)


def test_expected_paid_periods():
    assert expected_paid_periods((1.0, 3.0), 4) == pytest.approx(1 + 3 / 4 + 3 / 5 + 3 / 6)
    assert expected_paid_periods((1.0, 3.0), 2.5) == pytest.approx(1 + 3 / 4 + 0.5 * 3 / 5)  # half a period
    assert expected_paid_periods((1.0, 3.0), 0) == 0.0
    # a homogeneous churn of 20% a period (Beta concentrated at 0.2) is geometric: (1 - 0.8^k) / 0.2
    assert expected_paid_periods((0.2e6, 0.8e6), 12) == pytest.approx((1 - 0.8 ** 12) / 0.2, rel=1e-4)
    with pytest.raises(ValueError, match="^periods:"):
        expected_paid_periods((1.0, 3.0), -1)


# win_back ------------------------------------------------------------------------------------------------------

WIN_BACK = _frame([
    # 2020-01-01 to 2023-01-01 is 1,096 days, + 365 since: 1,461 days = 4 years: $2,000 / 4 = $500 a year
    {"person_id": "w1", "churn_risk": 0.8, "lifetime_value": 2000.0, "total_orders": 8,
     "first_order_date": "2020-01-01", "last_order_date": "2023-01-01", "days_since_last_order": 365},
    # on both cut-offs (60%, the base's 75th percentile $400); 200 days of tenure count as one year: $400
    {"person_id": "w2", "churn_risk": 0.6, "lifetime_value": 400.0, "total_orders": 2,
     "first_order_date": "2023-09-01", "last_order_date": "2023-09-21", "days_since_last_order": 180},
    {"person_id": "x_not_churned", "churn_risk": 0.59, "lifetime_value": 5000.0, "total_orders": 20,
     "first_order_date": "2019-01-01", "last_order_date": "2024-05-01", "days_since_last_order": 31},
    {"person_id": "x_cheap", "churn_risk": 0.9, "lifetime_value": 399.0, "total_orders": 3,
     "first_order_date": "2021-01-01", "last_order_date": "2022-01-01", "days_since_last_order": 500},
    *({"person_id": f"b{i}", "churn_risk": 0.2, "lifetime_value": v, "total_orders": 1,
       "first_order_date": "2024-01-01", "last_order_date": "2024-01-01", "days_since_last_order": 152}
      for i, v in enumerate([100.0, 150.0, 200.0, 300.0, 350.0])),
    {"person_id": "x_never", "lifetime_value": 0.0},
])


def test_win_back_cut_from_the_base_members_and_dollars_by_hand():
    defaults = data_defaults(WIN_BACK)
    assert defaults["win_back"]["min_ltv"] == pytest.approx(400.0)  # 9 buyers: the 7th smallest of them
    a = Assumptions.build("win_back", base_defaults=defaults)
    rule = opportunity_rule("win_back", a)
    assert rule == {"all": [{"field": "churn_risk", "op": "gte", "value": 60},
                            {"field": "lifetime_value", "op": "gte", "value": 400.0}]}
    members = _members(WIN_BACK, rule)
    assert set(members["person_id"]) == {"w1", "w2"}
    o = value_opportunity("win_back", members, a)
    assert o.figures["yearly_spend"] == pytest.approx(900.0)
    assert o.dollars == pytest.approx(900 * 0.15 * 0.60)
    assert (o.low, o.high) == (pytest.approx(900 * 0.075 * 0.6), pytest.approx(900 * 0.225 * 0.6))
    assert o.description == ("2 customers with churn risk of at least 60% and lifetime value of at least $400 used "
                             "to spend $450 a year each; if 15% come back at that pace, at a 60% margin that adds "
                             f"$81 over the next 12 months (range ${o.low:,.0f} to ${o.high:,.0f}).")


def test_win_back_needs_its_value_cut():
    with pytest.raises(ValueError, match="^min_ltv:"):
        opportunity_rule("win_back")
    assert opportunity_rule("win_back", {"min_ltv": 1000})["all"][1]["value"] == 1000


# prevent_churn -------------------------------------------------------------------------------------------------

PREVENT = _frame([
    {"person_id": "p1", "total_orders": 4, "churn_risk": 0.5, "predicted_ltv": 400.0, "predicted_ltv_low": 100.0,
     "predicted_ltv_high": 900.0},
    {"person_id": "p2", "total_orders": 2, "churn_risk": 0.3, "predicted_ltv": 100.0, "predicted_ltv_low": 0.0,
     "predicted_ltv_high": 300.0},
    {"person_id": "x_safe", "total_orders": 9, "churn_risk": 0.29, "predicted_ltv": 1000.0,
     "predicted_ltv_high": 2000.0},
    {"person_id": "x_small", "total_orders": 1, "churn_risk": 0.9, "predicted_ltv": 60.0, "predicted_ltv_high": 80.0},
    {"person_id": "x_never", "churn_risk": np.nan, "predicted_ltv": 500.0},
])


def test_prevent_churn_members_and_dollars_by_hand():
    members = _members(PREVENT, opportunity_rule("prevent_churn"))
    assert set(members["person_id"]) == {"p1", "p2"}
    o = value_opportunity("prevent_churn", members)
    loss = 0.5 * 400 + 0.3 * 100
    assert o.figures["expected_loss"] == pytest.approx(loss)
    assert o.dollars == pytest.approx(0.25 * loss * 0.60)
    assert o.low == pytest.approx(0.125 * (0.5 * 100 + 0.3 * 0) * 0.6)
    assert o.high == pytest.approx(0.375 * (0.5 * 900 + 0.3 * 300) * 0.6)
    assert "$230 of expected revenue at stake" in o.description
    assert "90% predictive intervals" in o.range_basis


def test_an_override_moves_the_rule_and_the_members():
    a = Assumptions.build("prevent_churn", {"min_predicted_ltv": 50, "save_rate": 40})
    members = _members(PREVENT, opportunity_rule("prevent_churn", a))
    assert set(members["person_id"]) == {"p1", "p2", "x_small"}
    o = value_opportunity("prevent_churn", members, a)
    assert o.dollars == pytest.approx(0.40 * (230 + 0.9 * 60) * 0.60)
    assert {x["name"]: x["value"] for x in o.assumptions} == {"save_rate": 40, "min_predicted_ltv": 50,
                                                              "margin": 60}


def test_no_members():
    o = value_opportunity("prevent_churn", PREVENT.iloc[:0])
    assert (o.customers, o.dollars, o.low, o.high) == (0, 0.0, 0.0, 0.0)
    assert o.description == ("No customers with churn risk of at least 30% and predicted 12-month value of at least "
                             "$100 right now (0 customers), so nothing to gain.")


# all -----------------------------------------------------------------------------------------------------------

def test_rules_use_catalogue_fields_only_and_parse():
    for oid in OPPORTUNITIES:
        rule = opportunity_rule(oid, {"min_ltv": 100} if oid == "win_back" else None)
        parse_rule(rule)
        assert fields_used(rule) <= set(FIELD_BY_NAME)


def test_ranked_by_dollars_not_by_risk():
    frame = pd.concat([CONVERT, WIN_BACK.assign(person_id="w_" + WIN_BACK["person_id"]),
                       PREVENT.assign(person_id="p_" + PREVENT["person_id"])], ignore_index=True)
    defaults = data_defaults(WIN_BACK)
    found = []
    for oid in OPPORTUNITIES:
        a = Assumptions.build(oid, base_defaults=defaults)
        found.append(value_opportunity(oid, _members(frame, opportunity_rule(oid, a)), a, lambda p: 6.0))
    ranked = rank_opportunities(found)
    assert [o.id for o in ranked] == ["convert_to_subscription", "win_back", "prevent_churn"]
    assert [o.dollars for o in ranked] == sorted((o.dollars for o in found), reverse=True)
    out = ranked[0].to_json()
    json.dumps(out, allow_nan=False)
    assert set(out) == {"id", "title", "description", "customers", "dollars", "low", "high", "range_basis",
                        "assumptions", "rule", "figures"}
    assert set(out["assumptions"][0]) == {"name", "label", "value", "unit", "min", "max"}


@pytest.mark.parametrize("oid, overrides, name", [
    ("convert_to_subscription", {"bogus": 1}, "bogus"),
    ("convert_to_subscription", {"conversion_rate": 150}, "conversion_rate"),
    ("convert_to_subscription", {"conversion_rate": -1}, "conversion_rate"),
    ("convert_to_subscription", {"interval_days": 0}, "interval_days"),
    ("convert_to_subscription", {"margin": float("nan")}, "margin"),
    ("win_back", {"min_ltv": "500"}, "min_ltv"),
    ("win_back", {"min_ltv": 100, "win_back_rate": True}, "win_back_rate"),
    ("prevent_churn", {"min_predicted_ltv": -5}, "min_predicted_ltv"),
    ("prevent_churn", {"conversion_rate": 10}, "conversion_rate"),  # another opportunity's assumption
])
def test_bad_assumptions_name_it(oid, overrides, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        Assumptions.build(oid, overrides)
    with pytest.raises(ValueError, match=f"^{name}:"):
        opportunity_rule(oid, overrides)


def test_other_mistakes_are_named():
    with pytest.raises(ValueError, match="^opportunity:"):
        opportunity_rule("upsell")
    with pytest.raises(ValueError, match="^retention:"):
        value_opportunity("convert_to_subscription", CONVERT)
    with pytest.raises(ValueError, match="^retention:"):
        value_opportunity("convert_to_subscription", CONVERT, None, lambda days: 365.25 / days + 1)
    with pytest.raises(ValueError, match="^predicted_ltv_low:"):
        value_opportunity("prevent_churn", PREVENT.drop(columns="predicted_ltv_low"))
    with pytest.raises(ValueError, match="^assumptions:"):
        value_opportunity("prevent_churn", PREVENT, Assumptions.build("win_back", {"min_ltv": 1}))


def test_a_million_rows():
    rng = np.random.default_rng(5)
    n = 1_000_000
    orders = rng.poisson(2, n)
    first = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    f = pd.DataFrame({
        "total_orders": orders, "lifetime_value": rng.gamma(2, 80, n) * orders,
        "avg_order_value": rng.gamma(3, 25, n), "first_order_date": first,
        "last_order_date": first + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
        "days_since_last_order": rng.integers(0, 400, n), "churn_risk": rng.beta(2, 4, n),
        "predicted_ltv": rng.gamma(1.5, 60, n)})
    f["predicted_ltv_low"], f["predicted_ltv_high"] = f["predicted_ltv"] * 0.2, f["predicted_ltv"] * 2.5
    a = Assumptions.build("win_back", base_defaults=data_defaults(f))
    found = [
        value_opportunity("convert_to_subscription", f[f["total_orders"] >= 2], None, sbg_retention((1.2, 4.0))),
        value_opportunity("win_back", f[(f["churn_risk"] >= 0.6) & (f["lifetime_value"] >= a["min_ltv"])], a),
        value_opportunity("prevent_churn", f[(f["churn_risk"] >= 0.3) & (f["predicted_ltv"] >= 100)]),
    ]
    for o in rank_opportunities(found):
        assert o.customers > 0 and 0 < o.low < o.dollars < o.high
