"""Next best action: planted customers, each built to meet one rule (and often a later one too, so the order of
the rules is tested), with cut-offs fixed by hand; the cut-offs from a frame; the reasons in each customer's own
numbers; a million rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.cdp.health import HealthThresholds
from core.cdp.next_action import ACTIONS, PolicyContext, next_best_action, policy_context

CTX = PolicyContext(HealthThresholds(), ltv_top_quartile=500.0, ltv_top_decile=1000.0,
                    predicted_ltv_top_decile=300.0, predicted_high_top_quartile=400.0, aov_median=60.0, buyers=100)

BASE = {"churn_risk": 0.1, "lifetime_value": 150.0, "total_orders": 1, "avg_order_value": 50.0,
        "days_since_last_order": 30, "subscription_status": "none", "subscription_mrr": 0.0, "predicted_ltv": 50.0,
        "predicted_ltv_high": 120.0, "tickets_90d": 0, "days_since_last_ticket": np.nan, "charge_overdue": np.nan,
        "charges_failed_90d": 0, "opens_trend_90": 0.0}

# person: (overrides of BASE, expected action, expected reason or None)
PLANTED = {
    "ticket": ({"tickets_90d": 3, "days_since_last_ticket": 12, "churn_risk": 0.64, "subscription_status": "active",
                "lifetime_value": 2000.0, "charge_overdue": 2.0},
               "resolve_ticket", "Opened 3 support tickets in the last 90 days, the last 12 days ago; churn risk 64%"),
    "ticket_today": ({"tickets_90d": 1, "days_since_last_ticket": 0, "churn_risk": 0.3},
                     "resolve_ticket", "Opened 1 support ticket in the last 90 days, the last one today; churn risk "
                                       "30%"),
    "ticket_but_healthy": ({"tickets_90d": 2, "days_since_last_ticket": 3, "churn_risk": 0.2,
                            "lifetime_value": 2000.0}, "invite_vip", None),
    "old_ticket_subscriber": ({"tickets_90d": 1, "days_since_last_ticket": 40, "churn_risk": 0.5,
                               "subscription_status": "Active", "subscription_mrr": 39.0},
                              "save_subscription", "Active subscriber paying $39/month; churn risk 50%"),
    "skipping": ({"subscription_status": "active", "subscription_mrr": 49.0, "churn_risk": 0.1, "charge_overdue": 2.3,
                  "charges_failed_90d": 2, "opens_trend_90": -1.5},
                 "save_subscription", "Active subscriber paying $49/month; churn risk 10%; 2.3 billing periods since "
                                      "the last paid charge; 2 failed charges in the last 90 days; email opens down "
                                      "1.5 a month"),
    "critical_subscriber_vip": ({"subscription_status": "active", "churn_risk": 0.7, "lifetime_value": 3000.0},
                                "save_subscription", None),
    "lapsed_valuable": ({"churn_risk": 0.7, "lifetime_value": 800.0, "days_since_last_order": 200},
                        "win_back", "Last ordered 200 days ago, churn risk 70%; lifetime value $800 (buyers' top "
                                    "quartile from $500)"),
    "on_the_cut_offs": ({"churn_risk": 0.6, "lifetime_value": 500.0}, "win_back", None),
    "lapsed_upside": ({"churn_risk": 0.2, "days_since_last_order": 150, "predicted_ltv_high": 450.0},
                      "win_back", "Last ordered 150 days ago, churn risk 20%; could bring up to $450 in the next 12 "
                                  "months (90% upper bound; top quartile from $400)"),
    "lapsed_cheap": ({"churn_risk": 0.7, "lifetime_value": 100.0, "predicted_ltv": 20.0, "predicted_ltv_high": 50.0},
                     "no_action", "Churn risk 70%; lifetime value $100, predicted 12-month value $20: below the "
                                  "win-back cut-off (buyers' top quartile from $500 lifetime value); no recent support "
                                  "ticket or active subscription"),
    "repeat_cancelled": ({"subscription_status": "cancelled", "total_orders": 3, "avg_order_value": 80.0,
                          "churn_risk": 0.4},
                         "offer_subscription", "3 orders averaging $80 (buyers' median $60) and a cancelled "
                                               "subscription; churn risk 40%"),
    "repeat_big_vip": ({"total_orders": 6, "avg_order_value": 250.0, "lifetime_value": 1500.0, "churn_risk": 0.05},
                       "offer_subscription", None),
    "repeat_small": ({"total_orders": 3, "avg_order_value": 60.0, "churn_risk": 0.1},
                     "no_action", "Churn risk 10% is below the 30% warning level; lifetime value $150, predicted "
                                  "12-month value $50: below the VIP cut-offs (buyers' top 10% from $1,000 lifetime "
                                  "value or $300 predicted)"),
    "predicted_vip": ({"churn_risk": 0.1, "predicted_ltv": 350.0, "lifetime_value": 200.0},
                      "invite_vip", "Predicted 12-month value $350 (buyers' top 10% from $300); churn risk 10%"),
    "ltv_vip": ({"churn_risk": 0.299, "lifetime_value": 1234.0},
                "invite_vip", "Lifetime value $1,234 (buyers' top 10% from $1,000); churn risk 29%"),
    "warm_valuable": ({"churn_risk": 0.45, "lifetime_value": 900.0, "days_since_last_order": 30},
                      "no_action", "Churn risk 45% is below the 60% win-back level and the last order was 30 days ago "
                                   "(win-back after 120); no recent support ticket or active subscription"),
    "never_ordered": ({"churn_risk": np.nan, "total_orders": 0, "lifetime_value": 0.0, "avg_order_value": np.nan,
                       "days_since_last_order": None, "predicted_ltv": np.nan, "predicted_ltv_high": np.nan},
                      "no_action", "0 orders so far and no churn risk score: nothing to act on yet"),
}


def _frame() -> pd.DataFrame:
    rows = [{"person_id": pid, **BASE, **over} for pid, (over, _, _) in PLANTED.items()]
    f = pd.DataFrame(rows).set_index("person_id")
    f["days_since_last_order"] = f["days_since_last_order"].astype("Int64")
    return f


def test_every_planted_customer_gets_its_action_and_reason():
    out = next_best_action(_frame(), CTX)
    assert list(out.columns) == ["next_action", "next_action_reason"]
    assert out.index.equals(_frame().index)
    for pid, (_, action, reason) in PLANTED.items():
        assert out.loc[pid, "next_action"] == action, pid
        if reason is not None:
            assert out.loc[pid, "next_action_reason"] == reason, pid
    assert set(out["next_action"]) == set(ACTIONS)
    assert out["next_action_reason"].map(lambda s: isinstance(s, str) and len(s) > 20).all()


def test_thresholds_change_the_answer():
    ctx = PolicyContext(HealthThresholds(warning=0.5, critical=0.8), **{
        k: getattr(CTX, k) for k in ("ltv_top_quartile", "ltv_top_decile", "predicted_ltv_top_decile",
                                     "predicted_high_top_quartile", "aov_median")})
    out = next_best_action(_frame(), ctx)
    action = out["next_action"]
    assert action["ticket"] == "resolve_ticket"  # 64% is still at least the warning level
    assert action["ticket_today"] == "no_action"  # 30% is healthy now
    assert action["old_ticket_subscriber"] == "save_subscription"  # 50% reaches the new warning level
    assert action["lapsed_valuable"] == "win_back"  # 70% is no longer critical, but 200 days is lapsed
    assert action["warm_valuable"] == "no_action"
    assert out.loc["on_the_cut_offs", "next_action_reason"] == (
        "Churn risk 60% is below the 80% win-back level and the last order was 30 days ago (win-back after 120); "
        "no recent support ticket or active subscription")
    assert out.loc["warm_valuable", "next_action_reason"].startswith("Churn risk 45% is below the 50% warning level")


def test_cut_offs_come_from_the_buyers_of_the_frame():
    f = pd.DataFrame({**{k: [v] * 12 for k, v in BASE.items()}})
    f["total_orders"] = [1] * 10 + [0, 0]
    f["lifetime_value"] = [100.0 * (i + 1) for i in range(10)] + [0.0, 0.0]
    f["avg_order_value"] = [10.0 * (i + 1) for i in range(10)] + [np.nan, np.nan]
    f["predicted_ltv"] = [10.0 * (i + 1) for i in range(10)] + [1e6, 1e6]  # non-buyers do not count
    f["predicted_ltv_high"] = f["predicted_ltv"] * 2
    ctx = policy_context(f)
    assert ctx.buyers == 10
    assert ctx.ltv_top_quartile == pytest.approx(775.0)  # 100..1000, linear interpolation at 0.75 * 9
    assert ctx.ltv_top_decile == pytest.approx(910.0)
    assert ctx.predicted_ltv_top_decile == pytest.approx(91.0)
    assert ctx.predicted_high_top_quartile == pytest.approx(155.0)
    assert ctx.aov_median == pytest.approx(55.0)
    assert ctx.thresholds == HealthThresholds()
    assert PolicyContext.from_json(ctx.to_json()) == ctx


def test_incremental_scoring_with_the_base_context_equals_the_full_run():
    f = _frame()
    full = next_best_action(f, CTX)
    for pid in f.index:
        one = next_best_action(f.loc[[pid]], CTX)
        assert one.loc[pid].tolist() == full.loc[pid].tolist()
    # scored on its own, a lone customer is its own top decile: why the base's context is passed
    alone = next_best_action(f.loc[["repeat_small"]])
    assert alone.loc["repeat_small", "next_action"] == "invite_vip"


def test_no_buyers_means_no_value_rule_matches():
    f = _frame().loc[["never_ordered"]]
    ctx = policy_context(f)
    assert ctx.buyers == 0 and np.isnan(ctx.ltv_top_quartile)
    assert ctx.to_json()["ltv_top_quartile"] is None
    assert next_best_action(f, ctx)["next_action"].tolist() == ["no_action"]


def test_missing_column_and_bad_thresholds_are_named():
    with pytest.raises(ValueError, match="^tickets_90d:"):
        next_best_action(_frame().drop(columns="tickets_90d"), CTX)
    with pytest.raises(ValueError, match="^critical:"):
        PolicyContext.from_json({**CTX.to_json(), "warning": 0.7, "critical": 0.5})
    with pytest.raises(ValueError, match="^churn_risk:"):
        next_best_action(_frame().assign(churn_risk=64.0), CTX)


def _million(n: int = 1_000_000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    orders = rng.poisson(2, n)
    buyer = orders > 0
    return pd.DataFrame({
        "total_orders": orders, "lifetime_value": np.where(buyer, rng.gamma(2, 80, n) * orders, 0.0),
        "avg_order_value": np.where(buyer, rng.gamma(3, 25, n), np.nan),
        "days_since_last_order": pd.array(np.where(buyer, rng.integers(0, 400, n), None), dtype="Int64"),
        "subscription_status": rng.choice(["active", "paused", "cancelled", "none"], n, p=[.15, .05, .1, .7]),
        "subscription_mrr": rng.gamma(2, 20, n), "churn_risk": np.where(buyer, rng.beta(2, 4, n), np.nan),
        "predicted_ltv": rng.gamma(1.5, 60, n), "predicted_ltv_high": rng.gamma(1.5, 150, n),
        "tickets_90d": rng.poisson(.3, n),
        "days_since_last_ticket": np.where(rng.random(n) < .3, rng.integers(0, 200, n), np.nan),
        "charge_overdue": rng.gamma(4, .3, n), "charges_failed_90d": rng.poisson(.1, n),
        "opens_trend_90": rng.normal(0, 2, n)})


def test_a_million_rows_and_the_vectorised_reasons_match_plain_formatting():
    f = _million()
    ctx = policy_context(f)
    out = next_best_action(f, ctx)
    assert len(out) == len(f) and out["next_action"].isin(list(ACTIONS)).all()
    assert out["next_action_reason"].notna().all()
    assert set(out["next_action"]) == set(ACTIONS)
    rows = np.flatnonzero((out["next_action"] == "resolve_ticket").to_numpy())[:200]
    for i in rows:
        r = f.iloc[i]
        n, d = int(r["tickets_90d"]), int(r["days_since_last_ticket"])
        when = "the last one today" if d == 0 else f"the last {d} day{'' if d == 1 else 's'} ago"
        expected = (f"Opened {n} support ticket{'' if n == 1 else 's'} in the last 90 days, {when}; churn risk "
                    f"{int(np.floor(r['churn_risk'] * 100 + 1e-9))}%")
        assert out["next_action_reason"].iloc[i] == expected
