"""Segment rule validation (every kind of mistake names its path), the JSON round trip, segment references and
the field catalogue."""

from __future__ import annotations

import copy
import math

import pytest

from core.cdp.events import EVENT_TYPES
from core.cdp.fields import (
    EVENTS,
    FIELDS,
    OPERATOR_LABELS,
    TYPE_OPERATORS,
    Field,
    available_fields,
    catalogue,
    event_catalogue,
    field_by_name,
)
from core.cdp.profiles import PROFILE_COLUMNS
from core.cdp.segments import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_REFERENCE_DEPTH,
    Count,
    EventCondition,
    Group,
    Not,
    Rule,
    RuleError,
    SegmentCondition,
    TraitCondition,
    Window,
    events_used,
    fields_used,
    parse_rule,
    referenced_segments,
    to_json,
)


def _all(*conds) -> dict:
    return {"all": list(conds)}


def _t(field, op, value=None, **kw) -> dict:
    c = {"field": field, "op": op, **kw}
    if value is not None:
        c["value"] = value
    return c


def _ev(**kw) -> dict:
    return {"event": "order", **kw}


MISTAKES = [
    # malformed tree
    ([], "rules", "expected an object"),
    (_t("email", "is_set"), "rules", "a rule is a group"),
    ({"all": [], "any": []}, "rules", "exactly one of 'all', 'any' or 'not'"),
    ({"all": {}}, "rules.all", "expected a list"),
    ({"all": [], "name": "x"}, "rules.name", "unknown key"),
    (_all({"any": [], "x": 1}), "rules.all[0].x", "unknown key"),
    (_all(5), "rules.all[0]", "expected an object"),
    (_all({}), "rules.all[0]", "expected a group"),
    ({"not": []}, "rules.not", "expected an object"),
    (_all({"field": "email", "event": "order"}), "rules.all[0]", "exactly one of 'field', 'event' or 'segment'"),
    (_all(_t("email", "is_set", extra=1)), "rules.all[0].extra", "unknown key"),
    # unknown or unavailable field
    (_all(_t("nope", "eq", 1)), "rules.all[0].field", "unknown field 'nope'"),
    (_all({"field": 3, "op": "eq"}), "rules.all[0].field", "expected a field name"),
    # operator not allowed for the type
    (_all(_t("email", "gt", "x")), "rules.all[0].op", "operator 'gt' is not allowed for the string field 'email'"),
    (_all(_t("lifetime_value", "contains", "x")), "rules.all[0].op", "not allowed"),
    (_all(_t("sources", "eq", "ga4")), "rules.all[0].op", "not allowed"),
    (_all(_t("repeat_customer", "ne", True)), "rules.all[0].op", "not allowed"),
    (_all({"field": "email"}), "rules.all[0].op", "missing operator"),
    # wrong type / value shape
    ({"all": [_t("email", "is_set"), _t("location", "is_set"), {"any": [_t("lifetime_value", "gt", "500")]}]},
     "rules.all[2].any[0].value", "expected a number"),
    (_all(_t("lifetime_value", "gt", True)), "rules.all[0].value", "expected a number"),
    (_all(_t("lifetime_value", "gt", math.nan)), "rules.all[0].value", "expected a number"),
    (_all(_t("lifetime_value", "gt", 10**400)), "rules.all[0].value", "expected a number"),
    (_all(_t("lifetime_value", "gt")), "rules.all[0].value", "missing value"),
    (_all(_t("lifetime_value", "between", [1])), "rules.all[0].value", "two values"),
    (_all(_t("lifetime_value", "between", [5, 1])), "rules.all[0].value", "first bound is after the second"),
    (_all(_t("lifetime_value", "between", [1, "x"])), "rules.all[0].value[1]", "expected a number"),
    (_all(_t("total_orders", "in", [])), "rules.all[0].value", "expected 1 to 1000 values"),
    (_all(_t("total_orders", "in", 3)), "rules.all[0].value", "expected a list"),
    (_all(_t("total_orders", "not_in", [1, "a"])), "rules.all[0].value[1]", "expected a number"),
    (_all(_t("email", "is_set", "x")), "rules.all[0].value", "takes no value"),
    (_all(_t("email", "eq", "")), "rules.all[0].value", "expected text"),
    (_all(_t("email", "contains", 5)), "rules.all[0].value", "expected text"),
    (_all(_t("email", "in", ["a", None])), "rules.all[0].value[1]", "expected text"),
    (_all(_t("subscription_status", "eq", "gold")), "rules.all[0].value", "expected one of 'active'"),
    (_all(_t("email_engagement", "in", ["High", "high"])), "rules.all[0].value[1]", "expected one of"),
    (_all(_t("sources", "contains", "ga4,shopify")), "rules.all[0].value", "no commas"),
    (_all(_t("last_order_date", "before", "2024/01/01")), "rules.all[0].value", "expected a date (YYYY-MM-DD)"),
    (_all(_t("last_order_date", "after", "2024-02-30")), "rules.all[0].value", "expected a date"),
    (_all(_t("last_order_date", "between", ["2024-03-01", "2024-01-01"])), "rules.all[0].value", "first bound"),
    (_all(_t("last_order_date", "within_last", -1)), "rules.all[0].value", "whole number of days"),
    (_all(_t("last_order_date", "more_than_ago", 1.5)), "rules.all[0].value", "whole number of days"),
    (_all(_t("active_subscriber", "eq", "yes")), "rules.all[0].value", "expected true or false"),
    # behaviours: unknown event / property, bad count, window, filter
    (_all({"event": "bought"}), "rules.all[0].event", "unknown event 'bought'"),
    (_all({"event": None}), "rules.all[0].event", "expected an event name"),
    (_all(_ev(did="yes")), "rules.all[0].did", "expected true or false"),
    (_all(_ev(times=2)), "rules.all[0].times", "unknown key"),
    (_all(_ev(count=2)), "rules.all[0].count", "expected an object"),
    (_all(_ev(count={"op": "gt", "value": 1})), "rules.all[0].count.op", "expected one of gte, lte, eq"),
    (_all(_ev(count={"op": "gte", "value": -1})), "rules.all[0].count.value", "whole number"),
    (_all(_ev(count={"op": "gte", "value": 1.5})), "rules.all[0].count.value", "whole number"),
    (_all(_ev(count={"op": "gte"})), "rules.all[0].count.value", "whole number"),
    (_all(_ev(window={})), "rules.all[0].window", "expected one of"),
    (_all(_ev(window={"last_days": 7, "ever": True})), "rules.all[0].window", "expected one of"),
    (_all(_ev(window={"next_days": 3})), "rules.all[0].window.next_days", "unknown key"),
    (_all(_ev(window={"last_days": 0})), "rules.all[0].window.last_days", "whole number of days from 1"),
    (_all(_ev(window={"ever": False})), "rules.all[0].window.ever", "expected true"),
    (_all(_ev(window={"between": ["2024-03-01", "2024-01-01"]})), "rules.all[0].window.between", "first bound"),
    (_all(_ev(window={"between": ["2024-01-01", "soon"]})), "rules.all[0].window.between[1]", "expected a date"),
    (_all(_ev(where={"property": "campaign", "op": "eq", "value": "x"})), "rules.all[0].where.property",
     "event 'order' has no property 'campaign'"),
    (_all(_ev(where={"property": "product", "op": "gt", "value": "x"})), "rules.all[0].where.op", "expected one of"),
    (_all(_ev(where={"property": "product", "op": "eq", "value": 5})), "rules.all[0].where.value", "expected text"),
    (_all(_ev(where={"property": "product", "op": "in", "value": []})), "rules.all[0].where.value", "1 to 1000"),
    (_all(_ev(where="product")), "rules.all[0].where", "expected an object"),
    # segment references (shape)
    (_all({"segment": 5}), "rules.all[0].segment", "expected a segment id"),
    (_all({"segment": "a", "op": "maybe"}), "rules.all[0].op", "expected 'in' or 'not_in'"),
]


@pytest.mark.parametrize("rule,path,message", MISTAKES, ids=[f"{i}:{m[1]}" for i, m in enumerate(MISTAKES)])
def test_mistakes_name_their_path(rule, path, message):
    with pytest.raises(RuleError) as e:
        parse_rule(rule)
    assert e.value.path == path
    assert message in e.value.message
    assert str(e.value) == f"{path}: {e.value.message}"
    assert isinstance(e.value, ValueError)


def test_the_contract_example_message():
    rule = {"all": [_t("email", "is_set"), _t("phone", "is_set"), {"any": [_t("total_orders", "gte", "2")]}]}
    with pytest.raises(RuleError, match=r"^rules\.all\[2\]\.any\[0\]\.value: expected a number$"):
        parse_rule(rule)


def test_fields_missing_from_the_profile_table_are_refused():
    fields = available_fields(PROFILE_COLUMNS)
    assert "churn_risk" not in fields and "predicted_ltv" not in fields and "next_order_date" not in fields
    with pytest.raises(RuleError, match=r"rules.any\[0\].field: field 'churn_risk' is not available"):
        parse_rule({"any": [_t("churn_risk", "gt", 50)]}, fields=fields)
    fields = available_fields([*PROFILE_COLUMNS, "churn_risk"])
    assert parse_rule({"any": [_t("churn_risk", "gt", 50)]}, fields=fields.values())
    # the same through the profile table's columns
    with pytest.raises(RuleError, match="not available"):
        parse_rule({"any": [_t("churn_risk", "gt", 50)]}, columns=PROFILE_COLUMNS)
    assert parse_rule({"any": [_t("churn_risk", "gt", 50)]}, columns=[*PROFILE_COLUMNS, "churn_risk"])


def _nest(depth: int) -> dict:
    rule: dict = {"all": []}
    for i in range(depth - 1):
        rule = {"any": [rule]} if i % 2 else {"not": rule}
    return rule


def test_depth_and_size_limits():
    parse_rule(_nest(MAX_DEPTH))
    with pytest.raises(RuleError, match=f"nest at most {MAX_DEPTH}") as e:
        parse_rule(_nest(MAX_DEPTH + 1))
    assert e.value.path.startswith("rules.")
    parse_rule({"all": [_t("email", "is_set")] * MAX_CONDITIONS})
    with pytest.raises(RuleError, match=f"at most {MAX_CONDITIONS} conditions") as e:
        parse_rule({"all": [_t("email", "is_set")] * (MAX_CONDITIONS - 1) + [{"any": [_ev(), _ev()]}]})
    assert e.value.path == f"rules.all[{MAX_CONDITIONS - 1}].any[1]"


STORED = {
    "vip": {"all": [_t("lifetime_value", "gt", 500)]},
    "loyal": {"any": [{"segment": "vip"}, _ev(count={"op": "gte", "value": 3})]},
    "broken": {"all": [_t("nope", "eq", 1)]},
    "dangling": {"all": [{"segment": "gone"}]},
    "b": {"all": [{"segment": "a"}]},
    "c1": {"all": [{"segment": "c2"}]},
    "c2": {"all": [{"segment": "c1"}]},
    "x": {"all": [{"segment": "y"}]},
    "y": {"not": {"segment": "a", "op": "not_in"}},
    "me": {"all": [{"segment": "me"}]},
}


@pytest.mark.parametrize("rule,segment_id,message", [
    (_all({"segment": "nobody"}), None, "unknown segment 'nobody'"),
    (_all(_t("email", "is_set"), {"segment": "b"}), "a", "segment 'a' refers back to itself through 'b'"),
    (_all(_t("email", "is_set"), {"segment": "x"}), "a", "segment 'a' refers back to itself through 'x' and 'y'"),
    (_all(_t("email", "is_set"), {"segment": "a"}), "a", "segment 'a' refers to itself"),
    (_all(_t("email", "is_set"), {"segment": "c1"}), None, "segment 'c1' refers back to itself through 'c2'"),
    (_all(_t("email", "is_set"), {"segment": "me"}), "other", "segment 'me' refers to itself"),
    (_all(_t("email", "is_set"), {"segment": "broken"}), None, "segment 'broken' has an invalid rule"),
    (_all(_t("email", "is_set"), {"segment": "dangling"}), None, "segment 'dangling' refers to an unknown "
                                                                 "segment 'gone'"),
])
def test_segment_references_unknown_invalid_and_cycles(rule, segment_id, message):
    with pytest.raises(RuleError) as e:
        parse_rule(rule, lookup=STORED.get, segment_id=segment_id)
    assert e.value.path == f"rules.all[{len(rule['all']) - 1}].segment"
    assert e.value.message == message or e.value.message.startswith(message)


def test_the_contract_cycle_message():
    stored = {"a": {"all": []}, "b": {"any": [{"segment": "a", "op": "in"}]}}
    rule = {"all": [_t("email", "is_set"), {"segment": "b", "op": "in"}]}
    with pytest.raises(RuleError) as e:
        parse_rule(rule, lookup=stored.get, segment_id="a")
    assert str(e.value) == "rules.all[1].segment: segment 'a' refers back to itself through 'b'"
    assert parse_rule(rule, lookup=stored.get, segment_id="z")  # saving another segment: no cycle


def test_reference_chains_are_limited():
    chain = {f"s{i}": _all({"segment": f"s{i + 1}"}) for i in range(MAX_REFERENCE_DEPTH + 2)}
    chain[f"s{MAX_REFERENCE_DEPTH + 2}"] = {"all": []}
    with pytest.raises(RuleError, match=f"more than {MAX_REFERENCE_DEPTH} levels deep") as e:
        parse_rule(_all({"segment": "s0"}), lookup=chain.get)
    assert e.value.path == "rules.all[0].segment"
    assert parse_rule(_all({"segment": "s4"}), lookup=chain.get)


def test_references_fields_and_events_used():
    rule = parse_rule({"all": [{"segment": "loyal"}, _t("email", "is_set"),
                               {"not": {"event": "email_opened"}}]}, lookup=STORED.get)
    assert referenced_segments(rule) == {"loyal"}
    assert referenced_segments(rule, STORED.get) == {"loyal", "vip"}
    assert fields_used(rule) == {"email"}
    assert fields_used(rule, STORED.get) == {"email", "lifetime_value"}
    assert events_used(rule) == {"email_opened"}
    assert events_used(rule, STORED.get) == {"email_opened", "order"}
    # rule JSON is accepted too (and refused when invalid)
    assert referenced_segments({"all": [{"segment": "loyal"}]}, STORED.get) == {"loyal", "vip"}
    with pytest.raises(RuleError):
        referenced_segments({"all": [{"segment": 5}]})
    # without a lookup, references are taken as they are
    assert parse_rule(_all({"segment": "anything"})).root.children[0] == SegmentCondition("anything", "in")


RICH = {"any": [
    {"all": [_t("lifetime_value", "between", [100, 500.5]), _t("email", "contains", "gmail"),
             _t("sources", "in", ["shopify", "ga4"]), _t("email_engagement", "eq", "High"),
             _t("last_order_date", "between", ["2024-01-01", "2024-03-31"]), _t("first_seen", "within_last", 30),
             _t("active_subscriber", "eq", False), _t("phone", "is_not_set"), _t("total_orders", "not_in", [0, 1])]},
    {"not": {"any": [
        {"event": "order", "did": False, "count": {"op": "lte", "value": 2}, "window": {"last_days": 45},
         "where": {"property": "product", "op": "in", "value": ["Retinol Night Cream", "SPF 50"]}},
        {"event": "email_clicked", "did": True, "count": {"op": "eq", "value": 0},
         "window": {"between": ["2024-02-01", "2024-02-29"]}},
    ]}},
    {"segment": "vip", "op": "not_in"},
    {"all": []},
    {"any": []},
]}


def test_json_round_trip():
    rule = parse_rule(RICH, lookup=STORED.get)
    out = to_json(rule)
    assert out == RICH  # already canonical
    assert parse_rule(out) == rule
    assert parse_rule(rule) == rule
    c = rule.root.children[0].children[4]
    assert isinstance(c, TraitCondition) and str(c.value[0]) == "2024-01-01"
    b = rule.root.children[1].child.children[0]
    assert isinstance(b, EventCondition) and b.count == Count("lte", 2) and b.window == Window("last_days", 45)
    hash(rule)  # immutable all the way down


def test_defaults_are_written_out():
    rule = parse_rule({"not": {"event": "login"}})
    assert rule == Rule(Not(EventCondition("login")))
    assert to_json(rule) == {"not": {"event": "login", "did": True, "count": {"op": "gte", "value": 1},
                                     "window": {"ever": True}}}
    assert to_json(parse_rule({"all": [{"segment": "s"}]})) == {"all": [{"segment": "s", "op": "in"}]}
    assert parse_rule({"any": []}).root == Group("any", ())


def test_parse_does_not_change_its_input():
    before = copy.deepcopy(RICH)
    parse_rule(RICH)
    assert RICH == before


def test_catalogue():
    fields = catalogue(PROFILE_COLUMNS, {"location": ["London", "Paris"]})
    by = {f["name"]: f for f in fields}
    assert {"name", "email", "location", "sources", "email_engagement", "lifetime_value"} <= set(by)
    assert not {"churn_risk", "predicted_ltv", "next_order_date"} & set(by)
    assert set(by["email"]) == {"name", "label", "type", "operators", "unit", "group", "values"}
    assert by["location"]["values"] == ["London", "Paris"]
    assert by["email_engagement"]["values"] == ["High", "Medium", "Low"]
    assert by["subscription_status"]["values"] == ["active", "paused", "cancelled", "none"]
    assert by["lifetime_value"]["unit"] == "$" and by["days_since_last_order"]["unit"] == "days"
    assert by["email"]["values"] is None
    cols = [*PROFILE_COLUMNS, "churn_risk", "predicted_ltv", "next_order_date"]
    preds = {f["name"]: f for f in catalogue(cols)}
    assert preds["churn_risk"]["unit"] == "%" and preds["predicted_ltv"]["unit"] == "$"
    assert preds["next_order_date"]["type"] == "date"
    # every profile column that is worth it is offered, and every operator has a label
    offered = {c for f in FIELDS if f.available(PROFILE_COLUMNS) for c in f.requires}
    assert set(PROFILE_COLUMNS) <= offered
    assert set(OPERATOR_LABELS) >= {op for ops in TYPE_OPERATORS.values() for op in ops}
    assert field_by_name("email").type == "string" and field_by_name("nope") is None


def test_event_catalogue():
    assert set(EVENTS) == set(EVENT_TYPES)
    evs = {e["name"]: e for e in event_catalogue({"order.product": ["SPF 50"], "campaign": ["Spring Sale"]})}
    props = {p["name"]: p for p in evs["order"]["properties"]}
    assert props["product"]["values"] == ["SPF 50"] and "shopify" in props["source"]["values"]
    assert {p["name"]: p["values"] for p in evs["email_opened"]["properties"]}["campaign"] == ["Spring Sale"]


def test_a_new_field_is_one_entry():
    f = Field("loyalty_points", "Loyalty points", "integer", unit="points", group="Loyalty")
    assert f.operators == TYPE_OPERATORS["integer"] and f.column_sql == "loyalty_points"
    assert f.requires == ("loyalty_points",)
    rule = parse_rule(_all(_t("loyalty_points", "gte", 100)), fields=[*FIELDS, f])
    assert rule.root.children[0] == TraitCondition("loyalty_points", "gte", 100)
    with pytest.raises(ValueError, match="not defined"):
        Field("x", "X", "string", operators=("gt",))
