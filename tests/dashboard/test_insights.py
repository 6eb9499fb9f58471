"""The Customer Insights page without a browser: health donut and bands, opportunities whose assumptions re-ask the
API and update the dollars (never letting a stale answer win), "Save as segment" for opportunities and discovered
segments, segment performance, the model cards (or the API's message when a model is missing), and the predictions
on the profile and in Customer Search.

A small fake API answers with contract-shaped documents (no server).
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import panel as pn
import pytest

from dashboard import app as shell_mod
from dashboard.client import ApiError
from dashboard.format import money
from dashboard.insight_models import calibration_html, evaluation_html, model_targets, target_words
from dashboard.insight_views import (
    assumption_spec,
    band_rule,
    donut_svg,
    fit_words,
    health_html,
    performance_frame,
    to_api_value,
    trait_words,
)
from dashboard.pages import customers as customers_page
from dashboard.pages import insights as ins
from dashboard.pages import profile as profile_page

CALIBRATION = [{"bin": b, "n": 50, "lo": (b - 1) / 10, "hi": b / 10, "predicted": (b - 0.5) / 10,
                "observed": (b - 0.4) / 10} for b in range(1, 11)]


def metrics(auc: float, lift: float, calibration: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"n": 500, "positives": 120, "base_rate": 0.24, "roc_auc": auc, "pr_auc": 0.51, "brier": 0.1523,
            "brier_base_rate": 0.1824, "top_decile_lift": lift, "calibration": calibration or []}


PURCHASE_CARD = {
    "target": "purchase", "horizon_days": 90, "trained_at": "2024-07-01T08:00:00Z", "training_cutoff": "2024-04-01",
    "scoring_cutoff": "2024-06-30", "n_train": 5000, "positives_train": 1200, "base_rate_train": 0.24,
    "calibration_method": "isotonic", "evaluation_cutoff": "2024-01-02", "features": ["recency_days"],
    "evaluation": {"model": metrics(0.8123, 2.71, CALIBRATION), "days_since_last_order": metrics(0.7011, 1.9),
                   "rfm_logistic": metrics(0.7456, 2.2)},
}
RULE_CHURN = {"all": [{"field": "churn_risk", "op": "gte", "value": 0.6}]}
RULE_SUB = {"all": [{"field": "total_orders", "op": "gte", "value": 3},
                    {"field": "subscription_status", "op": "ne", "value": "active"}]}
INSIGHTS = {
    "as_of": "2024-06-30",
    "health": {"thresholds": {"warning": 0.3, "critical": 0.6}, "level": 0.9, "scored": 8123, "unscored": 1877,
               "bands": [
        {"band": "healthy", "customers": 6000, "share": 0.74, "revenue_at_stake": 12345.0,
         "revenue_at_stake_low": 10000.0, "revenue_at_stake_high": 14000.0, "predicted_ltv": 456789.0,
         "avg_churn_risk": 0.12},
        {"band": "warning", "customers": 1500, "share": 0.18, "revenue_at_stake": 45600.0,
         "revenue_at_stake_low": 40000.0, "revenue_at_stake_high": 51000.0, "predicted_ltv": 98000.0,
         "avg_churn_risk": 0.44},
        {"band": "critical", "customers": 623, "share": 0.077, "revenue_at_stake": 78900.0,
         "revenue_at_stake_low": 70000.0, "revenue_at_stake_high": 88000.0, "predicted_value": 21000.0,
         "avg_churn_risk": 0.72}]},
    "opportunities": [
        {"id": "prevent_churn", "title": "Win back customers at risk", "description": "Reach the critical band.",
         "customers": 412, "dollars": 19200.0, "low": 12000.0, "high": 26000.0, "rule": RULE_CHURN,
         "range_basis": "save rate 12.5% to 37.5%",
         "assumptions": [{"name": "save_rate", "label": "Save rate", "value": 25.0, "unit": "%", "min": 0.0,
                          "max": 100.0},
                         {"name": "discount", "label": "Discount cost", "value": 10.0, "unit": "$", "min": 0.0,
                          "max": 100.0}]},
        {"id": "convert_to_subscription", "title": "Convert repeat buyers to subscription",
         "description": "Repeat buyers without a subscription.", "customers": 900, "dollars": 15000.0,
         "low": 9000.0, "high": 21000.0, "rule": RULE_SUB,
         "assumptions": [{"name": "conversion_rate", "label": "Conversion rate", "value": 10.0, "unit": "%",
                          "min": 0.0, "max": 50.0}]},
    ],
    "opportunities_unavailable": {"win_back": "no churn model yet"},
    "segment_performance": [
        {"id": "vip-customers", "name": "VIP Customers", "customers": 500, "avg_ltv": 1500.0, "retention_90d": 0.91,
         "avg_churn_risk": 0.09},
        {"id": "at-risk", "name": "At Risk", "customers": 800, "avg_ltv": 300.0, "retention_90d": 0.41,
         "avg_churn_risk": 0.62}],
    "discovered": {"k": 2, "segments": [
        {"name": "Support-heavy regulars", "size": 1200, "share": 0.12, "avg_ltv": 800.0, "avg_predicted_ltv": 300.0,
         "avg_churn_risk": 0.2, "precision": 0.93, "recall": 0.88,
         "traits": [{"field": "support_tickets", "label": "Support tickets", "value": 3.1, "overall": 0.4, "z": 2.2},
                    {"field": "lifetime_value", "label": "Lifetime value", "value": 800.0, "overall": 350.0,
                     "z": 1.1},
                    {"field": "active_subscriber", "label": "Active subscriber", "value": 0.8, "overall": 0.2,
                     "z": 1.5}],
         "rule": {"all": [{"field": "support_tickets", "op": "gte", "value": 2}]}},
        {"name": "Lapsed one-timers", "size": 3000, "share": 0.3, "avg_ltv": 60.0, "avg_predicted_ltv": 10.0,
         "avg_churn_risk": 0.7, "precision": 0.81, "recall": 0.77,
         "traits": [{"field": "total_orders", "label": "Total orders", "value": 1.0, "overall": 2.6, "z": -1.4}],
         "rule": {"all": [{"field": "total_orders", "op": "eq", "value": 1}]}}]},
    "models": {"subscription": None, "purchase": PURCHASE_CARD, "as_of": "2024-06-30", "fitted_on_persons": 9000,
               "ltv": {"horizon_days": 365, "description": "BG/NBD ...", "holdout": {
                   "customers": 4000.0, "new_customers": 12.0, "predicted_purchases": 1510.0,
                   "actual_purchases": 1432.0, "naive_purchases": 1900.0, "predicted_revenue": 98000.0,
                   "actual_revenue": 91000.0, "mae": 0.41, "naive_mae": 0.63, "cutoff": "2024-04-01"}},
               "retention": None,
               "messages": {"subscription": "too little subscription history to train a model (12 cancellations)",
                            "retention": "subscription retention: too few subscriptions"}},
}
FIELDS = {"fields": [{"name": "support_tickets", "label": "Support tickets", "type": "integer", "unit": "tickets",
                      "operators": ["gte"], "group": "Support", "values": None},
                     {"name": "lifetime_value", "label": "Lifetime value", "type": "money", "unit": "$",
                      "operators": ["gte"], "group": "Orders", "values": None}],
          "events": [], "operators": {"gte": "at least", "eq": "is"}}


def answer(params: dict[str, Any]) -> dict[str, Any]:
    """The insights for the given assumptions: each opportunity's dollars are proportional to its assumptions."""
    doc = copy.deepcopy(INSIGHTS)
    for opp in doc["opportunities"]:
        factor = 1.0
        for a in opp["assumptions"]:
            key = f"{opp['id']}.{a['name']}"
            if key in params:
                v = float(params[key])
                if not a["min"] <= v <= a["max"]:
                    raise ApiError(400, f"{key}: must be between {a['min']} and {a['max']}")
                factor *= v / a["value"]
                a["value"] = v
        for k in ("dollars", "low", "high"):
            opp[k] = round(opp[k] * factor, 2)
    doc["opportunities"].sort(key=lambda o: -o["dollars"])
    return doc


class FakeApi:
    """Answers the insights and segment routes like the contract says; records every call."""

    def __init__(self, insights: dict[str, Any] | None = None, latency: list[float] | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.segments: list[dict[str, Any]] = []
        self.insights = insights
        self.latency = list(latency or [])

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append(("GET", path, params))
        if path == "/api/customers/insights":
            if self.latency:
                time.sleep(self.latency.pop(0))
            if self.insights is not None:
                return self.insights
            return answer(params)
        if path == "/api/segments/fields":
            return FIELDS
        if path == "/api/segments":
            return {"segments": self.segments}
        raise ApiError(404, "Not Found")

    def get_optional(self, path: str, **params: Any) -> Any:
        try:
            return self.get(path, **params)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def post(self, path: str, json: Any = None) -> Any:
        self.calls.append(("POST", path, json))
        if path == "/api/segments":
            if any(s["name"] == json["name"] for s in self.segments):
                raise ApiError(409, f"a segment called {json['name']!r} exists")
            seg = {"id": f"s{len(self.segments) + 1}", "system": False, "count": 412, **json}
            self.segments.append(seg)
            return seg
        raise ApiError(404, "Not Found")

    def insight_gets(self) -> list[dict[str, Any]]:
        return [p for m, path, p in self.calls if m == "GET" and path == "/api/customers/insights"]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def _html(view: Any) -> str:
    return "\n".join(o.object for o in view.select(pn.pane.HTML) if isinstance(o.object, str))


def _dollars(card: ins.OpportunityCard) -> str:
    text = card.figures.object
    return text.split('<span class="gl-opp-dollars">')[1].split("<")[0]


# --- page and navigation -----------------------------------------------------------------------------------------
def test_the_page_is_in_the_customers_section_next_to_search_and_segments() -> None:
    pages = [p for p in shell_mod.discover_pages() if p.section == "Customers"]
    names = [p.name for p in pages]
    assert "insights" in names and names.index("customers") < names.index("insights")
    assert next(p for p in pages if p.name == "insights").title == "Insights"


def test_health_donut_bands_thresholds_and_revenue_at_stake(api) -> None:
    pg = ins.InsightsPage(api)
    text = _html(pg.layout)
    assert 'class="gl-health-donut"' in text
    for band, colour in (("healthy", "#1a7f37"), ("warning", "#c98a00"), ("critical", "#c62828")):
        assert f'class="gl-donut-{band}"' in text and colour in text
    assert "critical: churn risk ≥ 60%" in text and "warning: churn risk 30% to 60%" in text
    assert "healthy: churn risk below 30%" in text
    assert "6,000" in text and "74%" in text and "$12.3K" in text and "$10K–$14K" in text and "$78.9K" in text
    assert "$21K" in text and "90% range" in text
    assert "8,123" in text and "1,877" in text and "Jun 30, 2024" in text


def test_donut_arcs_follow_the_counts() -> None:
    svg = donut_svg([{"band": "healthy", "customers": 3, "share": 0.75}, {"band": "critical", "customers": 1,
                                                                          "share": 0.25}], centre="4")
    assert 'stroke-dasharray="75.000 25.000" stroke-dashoffset="25.000"' in svg
    assert 'stroke-dasharray="25.000 75.000" stroke-dashoffset="-50.000"' in svg
    assert "Healthy: 3 customers (75%)" in svg
    assert "No customer has a churn prediction" in health_html({"bands": []})
    assert band_rule("critical", {"warning": 0.25, "critical": 0.5}) == "churn risk ≥ 50%"


def test_opportunities_ranked_as_the_api_returns_them_with_dollars_and_range(api) -> None:
    pg = ins.InsightsPage(api)
    assert list(pg.cards) == ["prevent_churn", "convert_to_subscription"]
    first = pg.cards["prevent_churn"]
    assert _dollars(first) == money(19200.0) and "#1" in first.figures.object
    assert "$12K–$26K" in first.figures.object and "412 customers" in first.figures.object
    assert "Range: save rate 12.5% to 37.5%." in first.figures.object
    assert "Win back customers at risk" in first.figures.object and "Reach the critical band." in first.figures.object
    save_rate, discount = first.inputs["save_rate"], first.inputs["discount"]
    assert (save_rate.name, save_rate.value, save_rate.start, save_rate.end) == ("Save rate (%)", 25.0, 0.0, 100.0)
    assert (discount.name, discount.value, discount.start, discount.end) == ("Discount cost ($)", 10.0, 0.0, 100.0)
    assert pg.params() == {}  # nothing changed yet
    assert pg.opportunities.objects[-1] is pg.unavailable
    assert "Win back" in pg.unavailable.object and "no churn model yet" in pg.unavailable.object
    assert ins.unavailable_html({}) == "" and "X" in ins.unavailable_html([{"id": "x", "reason": "r"}])


def test_assumption_units_and_round_trip() -> None:
    points = assumption_spec({"name": "margin", "label": "Gross margin", "value": 60.0, "unit": "%", "min": 0.0,
                              "max": 100.0})  # percent points, as the API sends them
    assert (points["value"], points["start"], points["end"], points["step"]) == (60.0, 0.0, 100.0, 1.0)
    assert to_api_value(42.5, points) == 42.5
    dollars = assumption_spec({"name": "min_ltv", "label": "Minimum lifetime value", "value": 412.37, "unit": "$",
                               "min": 0.0, "max": 1e9})
    assert dollars["label"] == "Minimum lifetime value ($)" and dollars["value"] == 412.37 and dollars["end"] == 1e9
    # a fraction of 0-1 is shown in percent points
    spec = assumption_spec({"name": "r", "label": "Rate", "value": 0.15, "unit": "%", "min": 0.05, "max": 0.35})
    assert (spec["value"], spec["start"], spec["end"], spec["label"]) == (15.0, 5.0, 35.0, "Rate (%)")
    assert to_api_value(15.0, spec) == 0.15 and to_api_value(14.2, spec) == 0.142
    plain = assumption_spec({"name": "months", "value": 6, "unit": "months", "min": 1, "max": 24})
    assert plain["label"] == "Months (months)" and plain["value"] == 6 and plain["step"] == 1
    assert assumption_spec({"name": "x", "value": 0.5, "min": 0, "max": 1})["step"] == 0.01


def test_changing_an_assumption_requeries_and_updates_the_dollars(api) -> None:
    pg = ins.InsightsPage(api)
    card = pg.cards["prevent_churn"]
    card.inputs["save_rate"].value = 40.0
    assert api.insight_gets()[-1] == {"prevent_churn.save_rate": 40.0}
    expected = answer({"prevent_churn.save_rate": 40.0})
    new = next(o for o in expected["opportunities"] if o["id"] == "prevent_churn")
    assert _dollars(card) == money(new["dollars"]) != money(19200.0)
    assert "gl-stale" not in card.figures.object
    # a second edit elsewhere sends both changed values; the cards follow the API's new ranking
    pg.cards["convert_to_subscription"].inputs["conversion_rate"].value = 50.0
    assert api.insight_gets()[-1] == {"prevent_churn.save_rate": 40.0,
                                      "convert_to_subscription.conversion_rate": 50.0}
    ranked = [o["id"] for o in answer(api.insight_gets()[-1])["opportunities"]]
    assert [c.css_classes[1] for c in pg.opportunities.objects[:-1]] == [f"gl-opp-{i}" for i in ranked]
    assert "#1" in pg.cards[ranked[0]].figures.object
    # back to the default: no longer sent
    card.inputs["save_rate"].value = 25.0
    assert api.insight_gets()[-1] == {"convert_to_subscription.conversion_rate": 50.0}


def test_a_refused_assumption_shows_the_api_message(api) -> None:
    pg = ins.InsightsPage(api)
    card = pg.cards["prevent_churn"]
    card.inputs["save_rate"].end = None  # a value the input would clamp in the browser
    card.inputs["save_rate"].value = 150.0
    assert "prevent_churn.save_rate: must be between 0.0 and 100.0" in card.status.object
    assert "gl-stale" in card.figures.object and _dollars(card) == money(19200.0)


def test_a_stale_answer_never_replaces_a_newer_one() -> None:
    api = FakeApi(latency=[0.4, 0.0])
    pg = ins.InsightsPage(api)
    pg.live = True
    card = pg.cards["prevent_churn"]

    async def race() -> None:
        card.inputs["save_rate"].value = 30.0  # slow answer
        await asyncio.sleep(0.1)
        card.inputs["save_rate"].value = 60.0  # fast answer
        await asyncio.sleep(0.7)

    asyncio.run(race())
    assert [p["prevent_churn.save_rate"] for p in api.insight_gets()[1:]] == [30.0, 60.0]
    latest = next(o for o in answer({"prevent_churn.save_rate": 60.0})["opportunities"] if o["id"] == "prevent_churn")
    assert _dollars(card) == money(latest["dollars"]) and "Updating" not in card.status.object
    assert not pg.apply(1, card, answer({}))  # an older edit's answer is dropped


def test_save_an_opportunity_as_a_segment_and_link_to_it(api) -> None:
    pg = ins.InsightsPage(api)
    card = pg.cards["prevent_churn"]
    asyncio.run(card.saver._clicked(None))  # what a click runs in a browser session
    assert not card.saver.button.disabled
    assert ("POST", "/api/segments", {"name": "Win back customers at risk", "description": "Reach the critical band.",
                                      "rules": RULE_CHURN}) in api.calls
    assert 'href="?page=segments&segment=s1"' in card.saver.result.object and "412 customers" in \
        card.saver.result.object
    again = card.saver.save()  # the name is taken now: link to that segment instead of an error
    assert again["id"] == "s1" and "Already saved as" in card.saver.result.object
    api.post = lambda path, json=None: (_ for _ in ()).throw(ApiError(400, "rules.all[0].field: unknown field"))
    assert card.saver.save() is None and "unknown field" in card.saver.result.object


def test_segment_performance_chart_and_table(api) -> None:
    pg = ins.InsightsPage(api)
    assert pg.performance.objects and isinstance(pg.performance.objects[0], pn.pane.HoloViews)
    text = _html(pg.layout)
    assert 'href="?page=segments&segment=vip-customers"' in text and "$1,500" in text and "91%" in text
    df = performance_frame(INSIGHTS["segment_performance"])
    assert list(df["Avg lifetime value"]) == [1500.0, 300.0] and list(df["90-day retention"]) == [91.0, 41.0]


def test_discovered_segments_cards_and_save_with_the_cluster_rule(api) -> None:
    pg = ins.InsightsPage(api)
    text = _html(pg.layout)
    assert "Support-heavy regulars" in text and "1,200" in text and "12%" in text and "$800" in text
    assert "Support tickets <b>3.1 tickets</b>" in text and "vs 0.4 tickets overall" in text
    assert "Active subscriber <b>80%</b>" in text and "vs 20% overall" in text
    assert "93% of the customers it selects" in text and "finds 88% of the group" in text
    assert "Support tickets at least 2 tickets" in text  # the rule in words, from the field catalogue
    saver = pg.savers[1]
    seg = saver.save()
    body = api.calls[-1][2]
    assert body["name"] == "Lapsed one-timers" and body["rules"] == INSIGHTS["discovered"]["segments"][1]["rule"]
    assert "Total orders" in body["description"] and "<" not in body["description"]
    assert f"segment={seg['id']}" in saver.result.object
    assert "gl-trait-down" in trait_words({"field": "x", "label": "X", "value": 1, "overall": 2, "z": -1})
    assert fit_words({}) == ""


def test_model_card_evaluation_and_reliability(api) -> None:
    pg = ins.InsightsPage(api)
    text = _html(pg.layout)
    assert "Purchase churn model" in text and "no order in the next 90 days" in text
    assert "Jul 1, 2024" in text and "Apr 1, 2024" in text and "5,000" in text and "1,200" in text and "24%" in text
    assert "Ranking quality (AUC)" in text and "Top-10% lift" in text and "Probability error (Brier score)" in text
    assert "0.81" in text and "0.70" in text and "0.75" in text and "2.71x" in text and "0.152" in text
    assert "Baseline: days since the last order" in text and "0.182" in text
    assert "gl-calibration" in text and "Actual churn" in text
    assert pg.calibration and isinstance(pg.calibration[0][0].objects[0], pn.pane.HoloViews)
    # a missing model shows the API's message
    assert "Subscription churn model" in text and "too little subscription history" in text
    assert model_targets(INSIGHTS["models"]) == ["subscription", "purchase"]  # not ltv / retention / as_of
    assert "Predicted-value model" in text and "1,510" in text and "1,432" in text and "$98K" in text
    assert "0.41" in text and "0.63" in text and "Apr 1, 2024" in text
    assert model_targets({"messages": {"subscription": "x"}}) == ["subscription"]
    assert "cancel" in target_words("subscription", 60) and "60 days" in target_words("subscription", 60)
    assert "No out-of-time evaluation" in evaluation_html({})
    assert "—" in evaluation_html({"model": {**metrics(None, None)}})  # undefined metrics are dashes
    assert "90%–100%" in calibration_html(CALIBRATION)


def test_no_customer_data_says_so() -> None:
    class Empty(FakeApi):
        def get(self, path: str, **params: Any) -> Any:
            if path == "/api/customers/insights":
                raise ApiError(404, "no customer data yet: sync a source first")
            return super().get(path, **params)

    pg = ins.InsightsPage(Empty())
    alerts = pg.layout.select(pn.pane.Alert)
    assert alerts and "no customer data yet" in alerts[0].object and alerts[0].alert_type == "warning"


def test_sparse_answers_do_not_break_the_page() -> None:
    sparse = {"as_of": None, "health": {"bands": []}, "opportunities": [], "segment_performance": [],
              "discovered": {"k": 0, "segments": []}, "models": {"purchase": None, "subscription": None,
                                                                 "messages": {}}}
    text = _html(ins.InsightsPage(FakeApi(insights=sparse)).layout)
    assert "No opportunity found" in text and "No natural groups" in text
    assert "No model has been trained" in text


# --- profile and search ------------------------------------------------------------------------------------------
PREDICTED = {"churn_risk": 0.64, "churn_target": "subscription", "health": "critical", "predicted_ltv": 420.0,
             "predicted_ltv_low": 300.0, "predicted_ltv_high": 560.0, "next_order_date": "2024-07-12",
             "next_action": "offer_subscription", "next_action_label": "Offer a subscription",
             "next_action_reason": "Orders every month but has no subscription."}


def test_profile_shows_the_predictions_when_present() -> None:
    cards = {c["key"]: c for c in profile_page.prediction_cards(PREDICTED)}
    assert cards["p-churn"]["value"] == "64%" and "Critical" in cards["p-churn"]["sub"]
    assert "subscription" in cards["p-churn"]["sub"]
    assert cards["p-pltv"]["value"] == "$420" and cards["p-pltv"]["sub"] == "likely $300–$560"
    assert cards["p-next-order"]["value"] == "Jul 12, 2024" and cards["p-health"]["value"] == "Critical"
    action = profile_page.next_action_html(PREDICTED)
    assert "Offer a subscription" in action and "Orders every month" in action and "#c62828" in action
    assert profile_page.predictions({"id": "p1"}) == [] and profile_page.next_action_html({}) == ""
    purchase = profile_page.prediction_cards({**PREDICTED, "churn_target": "purchase", "next_order_date": None})
    assert "purchase" in purchase[0]["sub"] and purchase[2]["value"] == "—"


def test_profile_page_renders_the_predictions_section() -> None:
    class Profiles:
        def get(self, path: str, **params: Any) -> Any:
            return {"profile": {"id": "p1", "name": "Ann Lee", "sources": ["shopify"], **PREDICTED},
                    "timeline": [], "identities": [], "merges": [], "sources": ["shopify"], "segments": []}

    text = _html(profile_page.profile_view(Profiles(), "p1"))
    assert "gl-kpi-p-churn" in text and "64%" in text and "Offer a subscription" in text and "$300–$560" in text


def test_search_results_gain_prediction_columns_only_when_present() -> None:
    plain = {"id": "p2", "name": "Bo", "lifetime_value": 50.0, "total_orders": 1, "sources": []}
    text = customers_page.results_table([{**plain, **PREDICTED, "id": "p1", "name": "Ann"}, plain])
    assert "Churn risk" in text and "Predicted LTV" in text and "Next best action" in text
    assert "64%" in text and "gl-health-critical" in text and "$420" in text and "Offer a subscription" in text
    assert 'title="Orders every month but has no subscription."' in text
    assert text.count("<tr") == 3 and text.split("<tr")[2].count("<td") == text.split("<tr")[3].count("<td")
    assert "Churn risk" not in customers_page.results_table([plain])
