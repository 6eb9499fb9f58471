"""Unified Customer Profile: who the customer is, what they are worth, and everything they did in every tool.

Opened from Customer Search (``?page=profile&id=<customer id>``): header with name and contact, lifetime value,
orders, subscriber since, engagement; the timeline across sources (newest first, with source badges); and the
identities (records in each tool) merged into this customer, with why they were merged; and the segments the
customer belongs to, each linking to its page. When the profile carries predictions: churn risk (with its health
band and what it predicts: a cancelled subscription or no further purchase), the predicted 12-month value with its
interval, the predicted next order date, and the next best action with its reason.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import (
    HEALTH_COLORS,
    KPI_CSS,
    error_alert,
    health_badge,
    kpi_card,
    kpi_row,
    kpi_strip,
    note,
    section_title,
)
from dashboard.format import DASH, day, money, money_range, number, share
from dashboard.pages.customers import TABLE_CSS, CustomerSearch, source_badges

TITLE = "Customer Profile"
SECTION = "Customers"
ORDER = 20

PROFILE_CSS = TABLE_CSS + """
.gl-phead {font-size: 26px; font-weight: 650; color: #1d2733;}
.gl-psub {color: #5f6b7a; font-size: 14px; margin-top: 2px;}
.gl-tl {list-style: none; padding-left: 0; margin: 0;}
.gl-tl li {padding: 6px 0; border-bottom: 1px solid #f0f2f4; font-size: 14px;}
.gl-tl .when {color: #5f6b7a; display: inline-block; min-width: 150px;}
.gl-next-action {border: 1px solid #e3e6ea; border-left: 5px solid #2f6fde; border-radius: 10px; padding: 10px 16px;
                  background: #fff; margin: 0 5px;}
.gl-next-action .t {font-size: 13px; color: #5f6b7a; text-transform: uppercase; letter-spacing: .04em;}
.gl-next-action .v {font-size: 20px; font-weight: 650; color: #1d2733; margin-top: 2px;}
.gl-next-action .why {font-size: 14px; color: #3d4753; margin-top: 2px;}
.gl-seg-chip {display: inline-block; padding: 3px 10px; margin: 2px 6px 2px 0; border-radius: 12px; font-size: 13px;
              background: #eef3fc; color: #2f6fde; text-decoration: none; font-weight: 600;}
"""


def _ago(days: int | None) -> str:
    if days is None:
        return "—"
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days:,} days ago"


def header(p: dict[str, Any]) -> pn.pane.HTML:
    """Name, contact and subscription line."""
    contact = " | ".join(html.escape(x) for x in (p.get("email"), p.get("phone"), p.get("city")) if x)
    status = p.get("subscription_status") or "none"
    sub = {"active": "Active subscriber", "cancelled": "Cancelled subscription", "paused": "Paused subscription"}.get(
        status, "No subscription")
    return pn.pane.HTML(
        f'<div class="gl-phead gl-profile-name">{html.escape(p.get("name") or p["id"])}</div>'
        f'<div class="gl-psub">{contact}</div><div class="gl-psub">{sub} · customer id '
        f'{html.escape(p["id"])} · {source_badges(p.get("sources") or [])}</div>',
        stylesheets=[PROFILE_CSS], sizing_mode="stretch_width")


def cards(p: dict[str, Any]) -> list[pn.viewable.Viewable]:
    """The profile's key figures."""
    since = day(p["subscription_start_date"]) if p.get("subscription_start_date") else "—"
    return [
        kpi_card("Lifetime value", money(p.get("lifetime_value")), key="p-ltv"),
        kpi_card("Orders", number(p.get("total_orders")), key="p-orders"),
        kpi_card("Avg order", money(p.get("avg_order_value")), key="p-aov"),
        kpi_card("Subscriber since", since, key="p-since"),
        kpi_card("MRR", money(p.get("subscription_mrr")), key="p-mrr"),
        kpi_card("Last order", _ago(p.get("days_since_last_order")), key="p-last"),
        kpi_card("Email engagement", f"{p.get('email_engagement_score', 0)}/100", key="p-engagement"),
        kpi_card("Support tickets", number(p.get("support_tickets")), key="p-tickets"),
    ]


#: What a churn risk is the chance of, by the model's target.
CHURN_TARGET_WORDS = {"subscription": "subscription churn (cancels)", "purchase": "purchase churn (stops ordering)"}


def prediction_cards(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The predictions present in the profile as KPI cards (none when the profile has no predictions)."""
    cards: list[dict[str, Any]] = []
    band, target = p.get("health"), p.get("churn_target")
    if p.get("churn_risk") is not None:
        what = CHURN_TARGET_WORDS.get(target or "", f"{target} churn" if target else "")
        sub = " · ".join(x for x in ((band or "").capitalize(), what) if x)
        cards.append({"title": "Churn risk", "value": share(p["churn_risk"]), "key": "p-churn", "sub": sub or None})
    if p.get("predicted_ltv") is not None:
        rng = money_range(p.get("predicted_ltv_low"), p.get("predicted_ltv_high"))
        cards.append({"title": "Predicted 12-month value", "value": money(p["predicted_ltv"]), "key": "p-pltv",
                      "sub": f"likely {rng}" if rng != DASH else None})
    if "next_order_date" in p and (p.get("next_order_date") or p.get("churn_risk") is not None):
        when = p.get("next_order_date")
        cards.append({"title": "Next order (predicted)", "value": day(when) if when else DASH, "key": "p-next-order",
                      "small": True, "sub": None if when else "no order expected soon"})
    if band:
        cards.append({"title": "Health", "value": band.capitalize(), "key": "p-health", "small": True,
                      "sub": "by churn risk"})
    return cards


def next_action_html(p: dict[str, Any]) -> str:
    """The next best action and why (``""`` when the profile has none)."""
    label = p.get("next_action_label") or (str(p["next_action"]).replace("_", " ").capitalize()
                                           if p.get("next_action") else None)
    if not label:
        return ""
    colour = HEALTH_COLORS.get(p.get("health") or "", "#2f6fde")
    why = p.get("next_action_reason")
    return (f'<div class="gl-next-action" style="border-left-color: {colour}"><div class="t">Next best action '
            f'{health_badge(p.get("health"))}</div><div class="v gl-next-action-label">{html.escape(label)}</div>'
            f'{f"<div class=why>{html.escape(why)}</div>" if why else ""}</div>')


def predictions(p: dict[str, Any]) -> list[pn.viewable.Viewable]:
    """The predictions section, or nothing when the profile carries none."""
    cards, action = prediction_cards(p), next_action_html(p)
    if not cards and not action:
        return []
    out: list[pn.viewable.Viewable] = [section_title("Predictions")]
    if cards:
        out.append(kpi_strip(cards))
    if action:
        out.append(pn.pane.HTML(action, stylesheets=[PROFILE_CSS], sizing_mode="stretch_width", margin=(8, 5)))
    return out


def timeline_html(events: list[dict[str, Any]]) -> str:
    """Events newest first with a coloured badge for the tool each came from."""
    if not events:
        return '<div class="gl-note">No events.</div>'
    items = "".join(
        f'<li class="gl-tl-item gl-tl-{html.escape(e["source"])}"><span class="when">{day(e["time"])}</span>'
        f'{source_badges([e["source"]])} {html.escape(e["description"])}</li>' for e in events)
    return f'<ul class="gl-tl gl-timeline">{items}</ul>'


def identities_html(identities: list[dict[str, Any]]) -> str:
    """One row per source record merged into the customer."""
    rows = "".join(
        f"<tr><td>{source_badges([i.get('source') or ''])}</td>"
        f"<td>{html.escape(i.get('source_customer_id') or i.get('anonymous_id') or '')}</td>"
        f"<td>{html.escape(i.get('email') or '')}</td><td>{html.escape(i.get('phone') or '')}</td>"
        f"<td>{html.escape(' '.join(x for x in (i.get('first_name'), i.get('last_name')) if x))}</td>"
        f"<td class='num'>{number(i.get('events'))}</td></tr>" for i in identities)
    head = ("<tr><th>Source</th><th>Id in the tool</th><th>Email</th><th>Phone</th><th>Name</th>"
            "<th class='num'>Events</th></tr>")
    return f"<table class='gl-ctable gl-identities'>{head}{rows}</table>"


def merges_html(merges: list[dict[str, Any]], limit: int = 12) -> str:
    """Why the records were merged (the identity resolution's explanations)."""
    if not merges:
        return '<div class="gl-note">A single record: nothing had to be merged.</div>'
    items = "".join(f"<li>{html.escape(str(m.get('explanation') or m.get('method')))}</li>" for m in merges[:limit])
    more = f'<div class="gl-note">…and {len(merges) - limit} more links.</div>' if len(merges) > limit else ""
    return f'<ul class="gl-merges">{items}</ul>{more}'


def segments_html(segments: list[dict[str, Any]]) -> str:
    """The segments the customer is in, as links to each segment's page."""
    if not segments:
        return '<div class="gl-note gl-profile-segments">Not in any segment.</div>'
    links = "".join(f'<a class="gl-seg-chip" href="?page=segments&segment={quote(str(s["id"]), safe="")}">'
                    f'{html.escape(str(s.get("name") or s["id"]))}</a>' for s in segments)
    return f'<div class="gl-profile-segments">{links}</div>'


def profile_view(client: ApiClient, person_id: str) -> pn.viewable.Viewable:
    """The whole profile of one customer."""
    try:
        d = client.get(f"/api/customers/{person_id}")
    except ApiError as e:
        return error_alert(e, f"customer {person_id}")
    p = d["profile"]
    shown = len(d["timeline"])
    more = f" (latest {shown} of {d['timeline_total']:,})" if d.get("timeline_total", shown) > shown else ""
    return pn.Column(
        header(p),
        kpi_row(cards(p)[:4]), kpi_row(cards(p)[4:]),
        *predictions(p),
        *([section_title("Segments"), pn.pane.HTML(segments_html(d["segments"] or []), stylesheets=[PROFILE_CSS],
                                                   sizing_mode="stretch_width", margin=(0, 10))]
          if "segments" in d else []),
        section_title(f"Timeline across {len(d.get('sources') or [])} sources{more}"),
        pn.pane.HTML(timeline_html(d["timeline"]), stylesheets=[PROFILE_CSS], sizing_mode="stretch_width",
                     max_height=520, styles={"overflow-y": "auto"}),
        section_title(f"Identities merged ({len(d['identities'])} records)"),
        pn.pane.HTML(identities_html(d["identities"]), stylesheets=[PROFILE_CSS], sizing_mode="stretch_width"),
        pn.pane.HTML(merges_html(d.get("merges") or []), stylesheets=[PROFILE_CSS, KPI_CSS],
                     sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )


def page(client: ApiClient) -> pn.viewable.Viewable:
    """The profile named by ``?id=``; without one, a search to pick a customer."""
    pid = None
    if pn.state.session_args:
        arg = pn.state.session_args.get("id")
        pid = arg[0].decode() if arg else None
    if pid:
        return profile_view(client, pid)
    return pn.Column(note("Pick a customer to see the unified profile."), CustomerSearch(client).view(),
                     sizing_mode="stretch_width")
