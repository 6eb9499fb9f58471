"""Customer Search: find any customer by name, email, phone or id as you type; a click opens the unified profile.

A segment select narrows the search to one saved segment's members (``?segment=<id>`` preselects it). When the API
predicts them, the results also show churn risk (with the health band), predicted 12-month value and the next best
action.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

import panel as pn
import param

from dashboard.client import ApiClient, ApiError
from dashboard.components import KPI_CSS, error_alert, health_badge, note
from dashboard.format import day, money, number, share

TITLE = "Customer Search"
SECTION = "Customers"
ORDER = 10

PAGE_SIZE = 25
SORTS = {
    "Best match / lifetime value": None,
    "Lifetime value (high to low)": "-lifetime_value",
    "Orders (most first)": "-total_orders",
    "Last order (recent first)": "-last_order_date",
    "Days since last order (longest first)": "-days_since_last_order",
    "Email engagement (low to high)": "email_engagement_score",
    "Name (A to Z)": "name",
}
#: offered once the results carry predictions
PREDICTION_SORTS = {"Churn risk (highest first)": "-churn_risk", "Predicted LTV (high to low)": "-predicted_ltv"}
ALL_SORTS = {**SORTS, **PREDICTION_SORTS}

SOURCE_COLORS = {"shopify": "#5e8e3e", "klaviyo": "#1d1d1b", "ga4": "#e37400", "gorgias": "#6b46c1",
                 "recharge": "#3b6fd8"}

TABLE_CSS = KPI_CSS + """
.gl-ctable {border-collapse: collapse; width: 100%; font-size: 14px;}
.gl-ctable th {text-align: left; color: #5f6b7a; font-weight: 600; border-bottom: 1px solid #e3e6ea; padding: 6px 8px;}
.gl-ctable td {border-bottom: 1px solid #f0f2f4; padding: 6px 8px;}
.gl-ctable td.num, .gl-ctable th.num {text-align: right;}
.gl-ctable tr.gl-crow {cursor: pointer;}
.gl-ctable tr.gl-crow:hover td {background: #f3f7fe;}
.gl-ctable a {color: #2f6fde; text-decoration: none; font-weight: 600;}
.gl-badge {display: inline-block; padding: 1px 7px; margin: 1px 2px; border-radius: 9px; font-size: 11px;
           color: #fff; text-transform: uppercase; letter-spacing: .03em;}
"""


def source_badges(sources: list[str]) -> str:
    """Coloured badges naming the tools a customer appears in."""
    return "".join(f'<span class="gl-badge gl-badge-{html.escape(s)}" style="background:'
                   f'{SOURCE_COLORS.get(s, "#5f6b7a")}">{html.escape(s)}</span>' for s in sources)


def profile_href(person_id: str) -> str:
    """Link to the profile page of a customer."""
    return f"?page=profile&id={quote(person_id)}"


def _churn_cell(c: dict[str, Any]) -> str:
    if c.get("churn_risk") is None:
        return '<td class="num">—</td>'
    badge = health_badge(c.get("health"), dot_only=True)
    return f'<td class="num gl-c-churn" style="white-space: nowrap">{badge}{share(c["churn_risk"])}</td>'


def _action_cell(c: dict[str, Any]) -> str:
    label = c.get("next_action_label") or (str(c["next_action"]).replace("_", " ").capitalize()
                                           if c.get("next_action") else "—")
    why = c.get("next_action_reason") or ""
    return f'<td class="gl-c-action" title="{html.escape(why)}">{html.escape(label)}</td>'


#: Prediction columns, shown only when some result carries them: (header, cell builder, keys that signal them).
PREDICTION_COLUMNS = [
    ("<th class='num'>Churn risk</th>", _churn_cell, ("churn_risk",)),
    ("<th class='num'>Predicted LTV</th>",
     lambda c: f'<td class="num gl-c-pltv">{money(c.get("predicted_ltv"))}</td>', ("predicted_ltv",)),
    ("<th>Next best action</th>", _action_cell, ("next_action_label", "next_action")),
]


def prediction_columns(items: list[dict[str, Any]]) -> list[tuple[str, Any, tuple[str, ...]]]:
    """The prediction columns some of the items have a value for."""
    return [col for col in PREDICTION_COLUMNS if any(c.get(k) is not None for c in items for k in col[2])]


def results_table(items: list[dict[str, Any]]) -> str:
    """The results as an HTML table; each row links to the customer's profile."""
    if not items:
        return '<div class="gl-note gl-no-results">No customer matches.</div>'
    extra = prediction_columns(items)
    rows = []
    for c in items:
        href = profile_href(c["id"])
        name = html.escape(c.get("name") or "(no name)")
        rows.append(
            f'<tr class="gl-crow" onclick="window.location.search=\'{href}\'">'
            f'<td><a class="gl-customer-link" href="{href}">{name}</a></td>'
            f'<td>{html.escape(c.get("email") or "")}</td><td>{html.escape(c.get("phone") or "")}</td>'
            f'<td class="num">{money(c.get("lifetime_value"))}</td><td class="num">{number(c.get("total_orders"))}</td>'
            f'<td>{day(c.get("last_order_date")) if c.get("last_order_date") else "—"}</td>'
            f'<td>{html.escape(c.get("subscription_status") or "none")}</td>'
            f'{"".join(cell(c) for _h, cell, _k in extra)}'
            f'<td>{source_badges(c.get("sources") or [])}</td></tr>')
    head = ("<tr><th>Name</th><th>Email</th><th>Phone</th><th class='num'>Lifetime value</th>"
            "<th class='num'>Orders</th><th>Last order</th><th>Subscription</th>" +
            "".join(h for h, _c, _k in extra) + "<th>Sources</th></tr>")
    return f"<table class='gl-ctable gl-customer-results'>{head}{''.join(rows)}</table>"


class CustomerSearch:
    """Search box, sort, results and paging; every keystroke queries the API (prefix index, milliseconds)."""

    def __init__(self, client: ApiClient, segment: str | None = None) -> None:
        self.client = client
        self.segment = segment_select(client, segment)
        self.query = pn.widgets.TextInput(placeholder="Search by name, email, phone or customer id…",
                                          sizing_mode="stretch_width", css_classes=["gl-customer-search"])
        self.sort = pn.widgets.Select(options=list(SORTS), value=list(SORTS)[0], width=260)
        self.prev = pn.widgets.Button(name="‹ Previous", width=110, disabled=True)
        self.next = pn.widgets.Button(name="Next ›", width=110, disabled=True)
        self.summary = pn.pane.HTML("", stylesheets=[TABLE_CSS], sizing_mode="stretch_width")
        self.table = pn.pane.HTML("", stylesheets=[TABLE_CSS], sizing_mode="stretch_width")
        self.page = 1
        self.text = ""
        self.query.param.watch(self._typed, "value_input")
        self.sort.param.watch(lambda _e: self.refresh(reset=True), "value")
        if self.segment is not None:
            self.segment.param.watch(lambda _e: self.refresh(reset=True), "value")
        self.prev.on_click(lambda _e: self.move(-1))
        self.next.on_click(lambda _e: self.move(1))
        self.refresh()

    def _typed(self, event: param.parameterized.Event) -> None:
        self.text = event.new or ""
        self.refresh(reset=True)

    def move(self, step: int) -> None:
        self.page = max(1, self.page + step)
        self.refresh()

    def refresh(self, reset: bool = False) -> None:
        """Query the API with the current text, sort and page."""
        if reset:
            self.page = 1
        q = self.text
        seg = self.segment.value if self.segment is not None else None
        try:
            res = self.client.get("/api/customers", q=q.strip() or None, sort=ALL_SORTS[self.sort.value],
                                  page=self.page, page_size=PAGE_SIZE, segment=seg or None)
        except ApiError as e:
            self.summary.object = ""
            self.table.object = f'<div class="gl-note">{html.escape(e.message)}</div>'
            return
        total, pages = res["total"], res.get("pages", 1)
        what = f"matching “{html.escape(q.strip())}”" if q.strip() else ("" if seg else "in total")
        if seg:
            label = next((k for k, v in self.segment.options.items() if v == seg), seg)
            what = f"{what} in segment “{html.escape(label)}”".strip()
        noun = "customer" if total == 1 else "customers"
        self.summary.object = (f'<div class="gl-note gl-result-count">{number(total)} {noun} {what}'
                               f'{f" — page {self.page} of {pages}" if pages > 1 else ""}</div>')
        self.table.object = results_table(res["items"])
        if any("churn_risk" in c for c in res["items"]) and not set(PREDICTION_SORTS) <= set(self.sort.options):
            self.sort.options = [*self.sort.options, *PREDICTION_SORTS]
        self.prev.disabled = self.page <= 1
        self.next.disabled = self.page >= pages

    def view(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.query, *([self.segment] if self.segment is not None else []), self.sort,
                   sizing_mode="stretch_width"),
            self.summary, self.table, pn.Row(self.prev, self.next),
            note("Customers are unified across Shopify, Klaviyo, GA4, Gorgias and ReCharge. Click a customer to "
                 "open the profile."),
            sizing_mode="stretch_width",
        )


def segment_select(client: ApiClient, value: str | None = None) -> pn.widgets.Select | None:
    """A select of the saved segments (None when the API offers none)."""
    try:
        listing = (client.get_optional("/api/segments") or {}).get("segments") or []
    except ApiError:
        return None
    if not listing:
        return None
    options = {"All customers": "", **{s["name"]: s["id"] for s in sorted(listing, key=lambda s: not s.get("system"))}}
    return pn.widgets.Select(options=options, value=value if value in options.values() else "", width=220,
                             css_classes=["gl-customer-segment"])


def page(client: ApiClient) -> pn.viewable.Viewable:
    """The Customer Search page (``?segment=<id>`` searches within a segment)."""
    arg = pn.state.session_args.get("segment") if pn.state.session_args else None
    try:
        return CustomerSearch(client, segment=arg[0].decode() if arg else None).view()
    except ApiError as e:
        return error_alert(e, "customers")
