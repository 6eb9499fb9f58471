"""The Segments page without a browser: the builder's widgets give the API's rule JSON (and show a saved rule
again), the preview shows the API's numbers and never lets a stale answer win, invalid rules show the API's message
in place, saving posts the segment, and the segment page lists members, offers the CSV and deletes user segments.

A small fake API answers with contract-shaped documents (no server).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import panel as pn
import pytest

from dashboard.client import ApiError
from dashboard.pages import customers as customers_page
from dashboard.pages import profile as profile_page
from dashboard.pages import segments as seg_page
from dashboard.segment_builder import BehaviourRow, GroupBox, error_tokens
from dashboard.segment_detail import SegmentDetail, changes_html, history_frame
from dashboard.segment_values import Catalogue, ValueEditor, parse_number, value_kind
from dashboard.segment_words import amount, node_words, rule_html, sparkline_svg

_NUM = ["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_set", "is_not_set"]
FIELDS = {
    "as_of": "2025-03-05T00:00:00+00:00",
    "fields": [
        {"name": "lifetime_value", "label": "Lifetime value", "type": "money", "operators": _NUM, "unit": "$",
         "group": "Orders", "values": None},
        {"name": "total_orders", "label": "Total orders", "type": "integer", "operators": _NUM, "unit": "orders",
         "group": "Orders", "values": None},
        {"name": "last_order_date", "label": "Last order date", "type": "date", "unit": None, "group": "Orders",
         "operators": ["before", "after", "between", "within_last", "more_than_ago", "is_set", "is_not_set"],
         "values": None},
        {"name": "repeat_customer", "label": "Repeat customer", "type": "boolean", "operators": ["eq"], "unit": None,
         "group": "Orders", "values": None},
        {"name": "email_engagement", "label": "Email engagement", "type": "enum", "unit": None, "group": "Engagement",
         "operators": ["eq", "ne", "in", "not_in", "is_set", "is_not_set"], "values": ["High", "Medium", "Low"]},
        {"name": "sources", "label": "Sources", "type": "set", "operators": ["contains", "not_contains", "in"],
         "unit": None, "group": "Data", "values": ["shopify", "klaviyo"]},
        {"name": "location", "label": "City", "type": "string", "unit": None, "group": "Contact", "values": None,
         "operators": ["eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "is_set"]},
    ],
    "events": [
        {"name": "order", "label": "Placed an order", "properties": [
            {"name": "product", "label": "Product", "values": ["Retinol Night Cream", "Vitamin C Serum"]},
            {"name": "source", "label": "Source", "values": ["shopify"]}]},
        {"name": "email_opened", "label": "Opened an email", "properties": [
            {"name": "campaign", "label": "Campaign", "values": None}]},
        {"name": "email_clicked", "label": "Clicked an email", "properties": [
            {"name": "campaign", "label": "Campaign", "values": None}]},
    ],
    "operators": {"eq": "is", "ne": "is not", "lt": "less than", "lte": "at most", "gt": "greater than",
                  "gte": "at least", "between": "between", "in": "is any of", "not_in": "is none of",
                  "contains": "contains", "not_contains": "does not contain", "starts_with": "starts with",
                  "is_set": "is set", "is_not_set": "is not set", "before": "before", "after": "after",
                  "within_last": "in the last", "more_than_ago": "more than … ago"},
}
SEGMENTS = [
    {"id": "u1", "name": "Big spenders", "description": "LTV over 500", "system": False,
     "rules": {"all": [{"field": "lifetime_value", "op": "gt", "value": 500}]}, "count": 1847,
     "computed_at": "2025-03-05T01:00:00Z", "entered_last": 20, "exited_last": 3,
     "trend": [{"at": "2025-03-03", "count": 1800}, {"at": "2025-03-04", "count": 1830},
               {"at": "2025-03-05", "count": 1847}]},
    {"id": "vip", "name": "VIP", "description": "Top customers", "system": True,
     "rules": {"all": [{"field": "lifetime_value", "op": "gte", "value": 1000}]}, "count": 120,
     "computed_at": "2025-03-05T01:00:00Z", "trend": [{"at": "2025-03-05", "count": 120}], "entered_last": 1,
     "exited_last": 0},
]
HISTORY = [{"at": "2025-03-04T01:00:00Z", "count": 1830, "entered": 40, "exited": 10},
           {"at": "2025-03-05T01:00:00Z", "count": 1847, "entered": 20, "exited": 3}]
BRIEF_RULE = {"all": [{"field": "lifetime_value", "op": "gt", "value": 500},
                      {"field": "last_order_date", "op": "within_last", "value": 60},
                      {"field": "email_engagement", "op": "eq", "value": "High"}]}


def preview_of(rule: Any) -> dict[str, Any]:
    """A contract-shaped preview whose count depends on the rule (so tests can tell answers apart)."""
    text = json.dumps(rule, sort_keys=True)
    if '"abc"' in text:
        raise ApiError(400, "rules.all[1].value: expected a number")
    n = 100 + sum(map(ord, text)) % 5000
    return {"count": n, "share": n / 15000, "base": 15000, "avg_ltv": 640.5, "avg_orders": 3.2,
            "revenue_12m": 125_000.0, "avg_churn_risk": None, "elapsed_ms": 12.0, "as_of": "2025-03-05",
            "sample": [{"id": "p1", "name": "Ann Lee", "email": "ann@example.com", "lifetime_value": 900.0,
                        "total_orders": 4, "last_order_date": "2025-02-01T00:00:00Z",
                        "subscription_status": "active"}]}


class FakeApi:
    """Answers the segment routes like the contract says; records every call."""

    def __init__(self, latency: list[float] | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.segments = [dict(s) for s in SEGMENTS]
        self.latency = list(latency or [])

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append(("GET", path, params))
        if path == "/api/segments/fields":
            return FIELDS
        if path == "/api/segments":
            return {"segments": self.segments}
        if path == "/api/customers":
            return {"items": [], "total": 0, "page": 1, "pages": 1}
        if path.endswith("/members"):
            page = params.get("page", 1)
            items = [{"id": f"p{i}", "name": f"Person {i}", "email": f"p{i}@example.com", "lifetime_value": 900.0,
                      "total_orders": 2, "sources": ["shopify"]} for i in range(25 * (page - 1), 25 * page)]
            return {"items": items, "total": 60, "page": page, "page_size": 25, "pages": 3}
        if path.endswith("/changes"):
            return {"changes": [{"at": "2025-03-05T01:00:00Z", "person_id": "p1", "change": "entered"},
                                {"at": "2025-03-05T01:00:00Z", "person_id": "p9", "change": "exited"}]}
        sid = path.rsplit("/", 1)[-1]
        for s in self.segments:
            if path == f"/api/segments/{s['id']}":
                return {**s, "history": HISTORY}
        raise ApiError(404, f"no segment with id {sid!r}")

    def get_optional(self, path: str, **params: Any) -> Any:
        try:
            return self.get(path, **params)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def get_bytes(self, path: str, **params: Any) -> bytes:
        self.calls.append(("GET", path, params))
        return b"person_id,email\np1,ann@example.com\n"

    def post(self, path: str, json: Any = None) -> Any:
        self.calls.append(("POST", path, json))
        if path == "/api/segments/preview":
            if self.latency:
                time.sleep(self.latency.pop(0))
            return preview_of(json["rules"])
        if path == "/api/segments":
            if any(s["name"] == json["name"] for s in self.segments):
                raise ApiError(409, f"a segment called {json['name']!r} exists")
            seg = {"id": "new1", "system": False, "count": 42, "trend": [], **json}
            self.segments.append(seg)
            return seg
        raise ApiError(404, "Not Found")

    def put(self, path: str, json: Any = None) -> Any:
        self.calls.append(("PUT", path, json))
        return {"id": path.rsplit("/", 1)[-1], "count": 5, **json}

    def delete(self, path: str) -> None:
        self.calls.append(("DELETE", path, None))

    def posts(self, path: str = "/api/segments/preview") -> list[Any]:
        return [body for method, p, body in self.calls if method == "POST" and p == path]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def cat() -> Catalogue:
    return Catalogue.from_api(FIELDS, SEGMENTS)


def _type(widget: Any, text: str) -> None:
    """What the browser sends while the user types into a text input."""
    widget.value_input = text


def _html(view: Any) -> str:
    return "\n".join(o.object for o in view.select(pn.pane.HTML) if isinstance(o.object, str))


# --- builder -----------------------------------------------------------------------------------------------------
def test_the_brief_rule_built_with_widgets_is_the_contract_json(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    b = ed.builder
    ltv = b.add("trait")
    assert ltv.field.value == "lifetime_value" and ltv.op.value == "eq"
    ltv.op.value = "gt"
    _type(ltv.editor.widgets[0], "500")
    last = b.add("trait")
    last.field.value = "last_order_date"
    last.op.value = "within_last"
    _type(last.editor.widgets[0], "60")
    eng = b.add("trait")
    eng.field.value = "email_engagement"
    assert eng.editor.kind == "choice" and eng.editor.widgets[0].options == ["High", "Medium", "Low"]
    eng.editor.widgets[0].value = "High"
    assert ed.rule() == BRIEF_RULE
    assert api.posts()[-1] == {"rules": BRIEF_RULE}
    assert f"{preview_of(BRIEF_RULE)['count']:,} customers" in ed.headline.object
    # field groups and operator words come from the catalogue
    assert set(ltv.field.groups) == {"Orders", "Engagement", "Data", "Contact"}
    assert ltv.op.options["greater than"] == "gt" and last.op.options["in the last"] == "within_last"


def test_nested_groups_behaviour_and_segment_conditions(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    g = ed.builder.add("group")
    g.mode.value = "ANY"
    beh = g.add("event")
    assert beh.to_json() == {"event": "order", "did": True, "count": {"op": "gte", "value": 1},
                             "window": {"ever": True}}
    beh.did.value = False
    beh.count_op.value = "eq"
    _type(beh.count, "2")
    beh.window.value = "last"
    _type(beh.window_value.widgets[0], "30")
    beh.prop.value = "product"
    assert beh.prop_value.kind == "choice"
    beh.prop_value.widgets[0].value = "Retinol Night Cream"
    inner = g.add("group")
    inner.mode.value = "NONE"
    seg = inner.add("segment")
    seg.op.value = "not_in"
    assert ed.rule() == {"all": [{"any": [
        {"event": "order", "did": False, "count": {"op": "eq", "value": 2}, "window": {"last_days": 30},
         "where": {"property": "product", "op": "eq", "value": "Retinol Night Cream"}},
        {"not": {"any": [{"segment": "u1", "op": "not_in"}]}}]}]}
    assert inner.depth == 2 and "gl-seg-depth-2" in inner.view.css_classes
    g.remove(inner)
    assert len(g.children) == 1 and len(g.body.objects) == 1
    ed.builder.remove(g)
    assert ed.rule() == {"all": []}


def test_a_saved_rule_is_shown_again_exactly(cat) -> None:
    rule = {"any": [
        {"field": "lifetime_value", "op": "between", "value": [100, 500.5]},
        {"field": "total_orders", "op": "in", "value": [1, 2, 3]},
        {"field": "last_order_date", "op": "between", "value": ["2024-01-01", "2024-03-31"]},
        {"field": "last_order_date", "op": "is_not_set"},
        {"field": "repeat_customer", "op": "eq", "value": False},
        {"field": "email_engagement", "op": "in", "value": ["High", "Medium"]},
        {"field": "sources", "op": "contains", "value": "klaviyo"},
        {"field": "location", "op": "not_in", "value": ["Paris", "Lyon"]},
        {"not": {"any": [{"field": "location", "op": "starts_with", "value": "San"}]}},
        {"all": [{"event": "email_opened", "did": True, "count": {"op": "lte", "value": 3},
                  "window": {"between": ["2024-01-01", "2024-02-01"]},
                  "where": {"property": "campaign", "op": "contains", "value": "spring"}},
                 {"segment": "vip", "op": "in"}]},
    ]}
    box = GroupBox(cat, lambda: None, node=rule)
    assert box.to_json() == rule
    assert box.complete
    # a "not" of something other than an "any" group reads as "none of" that one node
    assert GroupBox(cat, lambda: None, node={"not": {"field": "lifetime_value", "op": "gt", "value": 1}}).to_json() \
        == {"not": {"any": [{"field": "lifetime_value", "op": "gt", "value": 1}]}}


@pytest.mark.parametrize("ftype,op,known,kind", [
    ("money", "gt", False, "num"), ("integer", "between", False, "num_range"), ("number", "in", False, "num_list"),
    ("money", "is_set", False, "none"), ("date", "before", False, "date"), ("date", "between", False, "date_range"),
    ("date", "within_last", False, "days"), ("date", "more_than_ago", False, "days"), ("enum", "eq", True, "choice"),
    ("enum", "not_in", True, "choices"), ("set", "contains", True, "choice"), ("set", "in", True, "choices"),
    ("string", "contains", False, "text"), ("string", "in", False, "texts"), ("string", "in", True, "choices"),
    ("string", "eq", True, "text"), ("boolean", "eq", False, "bool"), ("string", "is_not_set", False, "none"),
])
def test_value_widget_fits_type_and_operator(ftype, op, known, kind) -> None:
    assert value_kind(ftype, op, known) == kind


def test_value_editor_widgets_units_and_values() -> None:
    ed = ValueEditor(lambda: None)
    ed.set("num", unit="$")
    assert [type(o).__name__ for o in ed.view.objects] == ["HTML", "TextInput"] and "$" in ed.view.objects[0].object
    assert not ed.complete
    _type(ed.widgets[0], "$1,250.50")
    assert ed.value == 1250.5
    ed.set("days")
    assert "days" in ed.view.objects[-1].object
    ed.set("num_range", unit="orders", value=[1, 3])
    assert ed.value == [1, 3] and sum("orders" in getattr(o, "object", "") for o in ed.view.objects) == 2
    ed.set("date")
    assert isinstance(ed.widgets[0], pn.widgets.DatePicker) and ed.value is None
    ed.set("date_range", value=["2024-01-01", "2024-01-31"])
    assert ed.value == ["2024-01-01", "2024-01-31"]
    ed.set("choices", values=["High", "Low"])
    assert isinstance(ed.widgets[0], pn.widgets.MultiChoice) and not ed.complete
    ed.widgets[0].value = ["Low"]
    assert ed.value == ["Low"]
    ed.set("none")
    assert ed.view.objects == [] and ed.complete and ed.value is None
    assert parse_number("12") == 12 and parse_number("1.5") == 1.5 and parse_number("") is None
    assert parse_number("abc") == "abc"  # passed on: the API names the problem


def test_changing_the_operator_keeps_a_compatible_value(cat) -> None:
    box = GroupBox(cat, lambda: None, node={"all": [{"field": "lifetime_value", "op": "gt", "value": 500}]})
    row = box.children[0]
    row.op.value = "gte"
    assert row.to_json() == {"field": "lifetime_value", "op": "gte", "value": 500}
    row.op.value = "is_set"
    assert row.to_json() == {"field": "lifetime_value", "op": "is_set"}
    row.field.value = "sources"  # operator not offered by the new field: its first one
    assert row.op.value == "contains" and row.to_json()["value"] == "shopify"


# --- preview -----------------------------------------------------------------------------------------------------
def test_preview_shows_the_api_numbers(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    res = preview_of({"all": []})
    assert '<span class="gl-seg-count">' + f"{res['count']:,} customers" in ed.headline.object
    cards = ed.cards.object
    assert "$640" in cards and "$125K" in cards and "Avg churn risk" not in cards
    assert "gl-seg-sample" in ed.sample.object and "Ann Lee" in ed.sample.object and "?page=profile&id=p1" in \
        ed.sample.object
    assert seg_page.preview_cards({**res, "avg_churn_risk": 0.31})[-1]["value"] == "31%"
    assert seg_page.count_text(1) == "1 customer" and seg_page.count_text(1847) == "1,847 customers"


def test_an_unfinished_condition_waits_instead_of_asking(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    sent = len(api.posts())
    row = ed.builder.add("trait")
    assert len(api.posts()) == sent  # nothing to ask yet
    assert "gl-seg-pending" in ed.status.object and "condition 1" in ed.status.object
    assert row.error.visible and "gl-seg-stale" in ed.headline.object
    _type(row.editor.widgets[0], "10")
    assert len(api.posts()) == sent + 1 and ed.status.object == "" and not row.error.visible


def test_an_invalid_rule_shows_the_api_message_in_place(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    ed.builder.add("trait").editor.widgets[0].value_input = "1"
    bad = ed.builder.add("trait")
    _type(bad.editor.widgets[0], "abc")
    bad.editor._changed()
    assert api.posts()[-1]["rules"]["all"][1]["value"] == "abc"
    assert 'class="gl-seg-error"' in ed.status.object and "rules.all[1].value: expected a number" in ed.status.object
    assert bad.error.visible and "expected a number" in bad.error.object
    assert error_tokens("rules.all[2].any[0].value: x") == [("all", 2), ("any", 0)]
    assert error_tokens("not a path") == []


def test_a_stale_answer_never_replaces_a_newer_one(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    new, old = preview_of({"all": [1]}), preview_of({"all": []})
    assert ed.show(5, new)
    assert not ed.show(4, old)  # the answer to an older edit arrives late: dropped
    assert ed.result == new and f"{new['count']:,} customers" in ed.headline.object


def test_debounced_previews_send_the_latest_rule_and_drop_late_answers() -> None:
    api = FakeApi()
    ed = seg_page.SegmentsPage(api, live=False).editor
    row = ed.builder.add("trait")
    ed.live, ed.delay = True, 0.05  # as in a browser session: every edit schedules a debounced preview
    base = len(api.posts())

    async def typing() -> None:  # three keystrokes within the pause: one request, for the last text
        for text in ("5", "50", "500"):
            _type(row.editor.widgets[0], text)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)

    asyncio.run(typing())
    assert [b["rules"]["all"][0]["value"] for b in api.posts()[base:]] == [500]
    assert "Updating" not in ed.status.object

    api.latency = [0.4, 0.0]  # the first request is slow, the second fast
    ed.delay = 0.0

    async def race() -> None:
        _type(row.editor.widgets[0], "600")
        await asyncio.sleep(0.1)
        _type(row.editor.widgets[0], "700")
        await asyncio.sleep(0.6)

    asyncio.run(race())
    assert [b["rules"]["all"][0]["value"] for b in api.posts()[base + 1:]] == [600, 700]
    latest = preview_of({"all": [{"field": "lifetime_value", "op": "eq", "value": 700}]})
    assert latest["count"] != preview_of({"all": [{"field": "lifetime_value", "op": "eq", "value": 600}]})["count"]
    assert ed.result["count"] == latest["count"] and f"{latest['count']:,} customers" in ed.headline.object


def test_rule_json_only_on_request(api) -> None:
    ed = seg_page.SegmentsPage(api, live=False).editor
    assert not ed.json.visible
    ed.show_json.value = True
    assert ed.json.visible and '"all": []' in ed.json.object


# --- save and list -----------------------------------------------------------------------------------------------
def test_save_posts_the_segment_and_lists_it(api) -> None:
    pg = seg_page.SegmentsPage(api, live=False)
    ed = pg.editor
    assert ed.save() is None and "name" in ed.saved.object
    row = ed.builder.add("trait")
    _type(row.editor.widgets[0], "500")
    _type(ed.name, "High value")
    _type(ed.description, "  bought a lot ")
    seg = ed.save()
    assert api.posts("/api/segments")[-1] == {"name": "High value", "description": "bought a lot",
                                             "rules": {"all": [{"field": "lifetime_value", "op": "eq", "value": 500}]}}
    assert seg["id"] == "new1" and "?page=segments&segment=new1" in ed.saved.object
    assert "High value" in pg.list.object and pg.cat.segments["new1"] == "High value"
    assert ed.save() is None and "exists" in ed.saved.object  # the API's 409 shown


def test_editing_a_saved_segment_puts_it(api) -> None:
    pg = seg_page.SegmentsPage(api, edit="u1", live=False)
    ed = pg.editor
    assert ed.rule() == SEGMENTS[0]["rules"] and ed.name.value_input == "Big spenders"
    assert ed.save()["id"] == "u1" and ed.save_button.name == "Save changes"
    assert ("PUT", "/api/segments/u1", {"name": "Big spenders", "description": "LTV over 500",
                                        "rules": SEGMENTS[0]["rules"]}) in api.calls


def test_segment_list_system_first_with_links_and_trend() -> None:
    text = seg_page.list_html(SEGMENTS)
    assert text.index("VIP") < text.index("Big spenders")
    assert 'href="?page=segments&segment=u1"' in text and "gl-seg-spark" in text and "+20" in text
    assert "No segments yet" in seg_page.list_html([])
    assert sparkline_svg([1]) == "" and "polyline" in sparkline_svg([1, 3, 2])


def test_rule_in_words(cat) -> None:
    text = rule_html(BRIEF_RULE, cat)
    assert "ALL" in text and "Lifetime value greater than $500" in text
    assert "Last order date in the last 60 days" in text and "Email engagement is <b>High</b>" in text
    beh = {"event": "order", "did": False, "count": {"op": "gte", "value": 2}, "window": {"last_days": 30},
           "where": {"property": "product", "op": "eq", "value": "Retinol Night Cream"}}
    assert node_words(beh, cat) == ("<b>Not</b> (<b>Placed an order</b> at least twice in the last 30 days where "
                                    "product is <b>Retinol Night Cream</b>)")
    assert node_words({"field": "last_order_date", "op": "more_than_ago", "value": 90}, cat) == \
        "Last order date more than 90 days ago"
    assert node_words({"segment": "vip", "op": "not_in"}, cat) == "Not in segment <b>VIP</b>"
    assert "Every customer" in rule_html({"all": []}, cat)
    assert amount(1, "orders") == "1 order" and amount(19.5, "$") == "$19.50" and amount(1250, "$") == "$1,250"
    assert "NONE" in rule_html({"all": [{"not": {"any": [BRIEF_RULE["all"][0]]}}]}, cat)


# --- segment page ------------------------------------------------------------------------------------------------
def test_segment_page_members_csv_chart_and_delete(api) -> None:
    d = SegmentDetail(api, "u1")
    text = _html(d.layout)
    assert "Big spenders" in text and "Lifetime value greater than $500" in text
    assert "gl-seg-members" in d.members.object and "Person 0" in d.members.object
    assert "60 customers" in d.members_note.object and "page 1 of 3" in d.members_note.object
    d.next.clicks += 1
    assert "Person 25" in d.members.object and not d.prev.disabled
    assert d._csv().read().startswith(b"person_id")
    assert ("GET", "/api/segments/u1/members", {"format": "csv"}) in api.calls
    assert d.chart.objects and isinstance(d.chart.objects[0], pn.pane.HoloViews)
    assert list(history_frame(HISTORY)["Exited"]) == [-10, -3]
    assert "gl-seg-in" in changes_html([{"at": "2025-03-05", "person_id": "p1", "change": "entered"}])
    assert d.actions.select(pn.widgets.Button)[0].name == "Delete segment"
    d._confirm()
    assert d.delete() and ("DELETE", "/api/segments/u1", None) in api.calls
    assert "Deleted" in _html(d.layout)


def test_system_segment_cannot_be_deleted_and_unknown_segment_says_so(api) -> None:
    d = SegmentDetail(api, "vip")
    assert not d.actions.select(pn.widgets.Button) and "cannot be deleted" in _html(d.actions)
    assert "gl-seg-edit" not in _html(d.layout)
    missing = SegmentDetail(api, "nope")
    assert missing.layout.select(pn.pane.Alert) and "no segment with id 'nope'" in missing.layout.select(
        pn.pane.Alert)[0].object


def test_a_behaviour_row_switches_properties_with_the_event(cat) -> None:
    row = BehaviourRow(cat, lambda: None, lambda _r: None)
    assert list(row.prop.options) == ["any (no filter)", "Product", "Source"]
    row.event.value = "email_opened"
    assert list(row.prop.options) == ["any (no filter)", "Campaign"] and not row.prop_op.visible
    row.prop.value = "campaign"
    assert row.prop_op.visible and row.prop_value.kind == "text"


# --- customers and profile ---------------------------------------------------------------------------------------
def test_customer_search_filters_by_segment(api) -> None:
    search = customers_page.CustomerSearch(api, segment="u1")
    assert search.segment.value == "u1" and list(search.segment.options)[:2] == ["All customers", "VIP"]
    assert api.calls[-1] == ("GET", "/api/customers", {"q": None, "sort": None, "page": 1, "page_size": 25,
                                                      "segment": "u1"})
    search.segment.value = ""
    assert api.calls[-1][2]["segment"] is None


def test_profile_lists_the_segments_with_links() -> None:
    text = profile_page.segments_html([{"id": "u1", "name": "Big spenders"}])
    assert 'href="?page=segments&segment=u1"' in text and "Big spenders" in text
    assert "Not in any segment" in profile_page.segments_html([])


def test_client_put_delete_and_raw_downloads() -> None:
    import httpx

    from dashboard.client import ApiClient

    seen: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.params.get("format") == "csv":
            return httpx.Response(200, text="person_id\n1\n", headers={"content-type": "text/csv"})
        if request.url.path.endswith("/vip"):
            return httpx.Response(409, json={"detail": "system segments cannot be deleted"})
        return httpx.Response(200, json={"ok": True})

    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    assert client.put("/api/segments/a", {"name": "x"}) == {"ok": True}
    assert seen[-1][:2] == ("PUT", "/api/segments/a") and json.loads(seen[-1][2]) == {"name": "x"}
    assert client.delete("/api/segments/a") is None
    assert client.get_bytes("/api/segments/a/members", format="csv") == b"person_id\n1\n"
    with pytest.raises(ApiError) as e:
        client.get_bytes("/api/segments/vip")
    assert e.value.status == 409 and "cannot be deleted" in e.value.message
