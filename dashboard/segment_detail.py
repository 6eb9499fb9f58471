"""One segment's page (``?page=segments&segment=<id>``): its rule in words, members (paginated, CSV download),
people who entered and exited over time, the latest changes, and edit / delete for segments users made.
"""

from __future__ import annotations

import html
import io
import json
import re
from typing import Any
from urllib.parse import quote

import pandas as pd
import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import error_alert, kpi_strip, note, section_title
from dashboard.format import day, number
from dashboard.pages.customers import TABLE_CSS as CUSTOMER_CSS
from dashboard.pages.customers import profile_href, results_table
from dashboard.pages.segments import PAGE_CSS, count_text
from dashboard.segment_values import Catalogue
from dashboard.segment_words import rule_html

__all__ = ["SegmentDetail", "history_frame", "history_chart", "changes_html"]

PAGE_SIZE = 25
GREEN, RED = "#1a7f37", "#c62828"
DETAIL_CSS = PAGE_CSS + """
.gl-seg-title {font-size: 26px; font-weight: 650; color: #1d2733;}
.gl-seg-links a {color: #2f6fde; text-decoration: none; font-weight: 600; margin-right: 18px;}
.gl-seg-changes {list-style: none; padding-left: 0; margin: 0; font-size: 14px;}
.gl-seg-changes li {padding: 4px 0; border-bottom: 1px solid #f0f2f4;}
.gl-seg-changes a {color: #2f6fde; text-decoration: none;}
"""


def history_frame(history: list[dict[str, Any]], last: int = 30) -> pd.DataFrame:
    """Entered (up) and exited (down) per recomputation, the latest ``last`` of them, labelled by day (and time
    when a day saw several updates)."""
    hist = history[-last:]
    labels = [day(h.get("at")) for h in hist]
    if len(set(labels)) < len(labels):
        stamps = pd.to_datetime([h.get("at") for h in hist], utc=True, errors="coerce")
        labels = [f"{lab} {t:%H:%M}" if t is not pd.NaT else lab for lab, t in zip(labels, stamps, strict=True)]
    rows = [{"when": lab, "Entered": int(h.get("entered") or 0), "Exited": -int(h.get("exited") or 0)}
            for lab, h in zip(labels, hist, strict=True)]
    return pd.DataFrame(rows, columns=["when", "Entered", "Exited"])


def history_chart(history: list[dict[str, Any]]) -> pn.viewable.Viewable:
    """A small bar chart of people entering and leaving the segment at each update."""
    import hvplot.pandas  # noqa: F401  (late import: numbers first, charts after)

    df = history_frame(history)
    plot = df.hvplot.bar(x="when", y=["Entered", "Exited"], stacked=True, color=[GREEN, RED], height=240,
                         responsive=True, xlabel="", ylabel="customers", legend="right", rot=30,
                         title="Entered and exited at each update").opts(tools=["hover"])
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=240, linked_axes=False)


def changes_html(changes: list[dict[str, Any]]) -> str:
    """The latest people in and out, each linking to the profile."""
    if not changes:
        return '<div class="gl-note">No one has entered or left yet.</div>'
    items = "".join(
        f'<li><span class="{"gl-seg-in" if c.get("change") == "entered" else "gl-seg-out"}">'
        f'{html.escape(str(c.get("change", "")))}</span> {day(c.get("at"))} · '
        f'<a href="{profile_href(str(c.get("person_id")))}">{html.escape(str(c.get("person_id")))}</a></li>'
        for c in changes)
    return f'<ul class="gl-seg-changes">{items}</ul>'


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "segment"


class SegmentDetail:
    """The page of one saved segment."""

    def __init__(self, client: ApiClient, segment_id: str) -> None:
        self.client, self.id = client, segment_id
        self.base = f"/api/segments/{quote(segment_id, safe='')}"
        self.page = 1
        try:
            self.seg = client.get(self.base)
        except ApiError as e:
            self.layout = pn.Column(error_alert(e, f"segment {segment_id}"),
                                    pn.pane.HTML('<div class="gl-seg-links"><a href="?page=segments">All segments'
                                                 '</a></div>', stylesheets=[DETAIL_CSS]), sizing_mode="stretch_width")
            return
        fields = client.get_optional("/api/segments/fields") or {}
        listing = (client.get_optional("/api/segments") or {}).get("segments") or []
        self.cat = Catalogue.from_api(fields, listing)
        s = self.seg
        self.members = pn.pane.HTML("", stylesheets=[CUSTOMER_CSS, DETAIL_CSS], sizing_mode="stretch_width")
        self.members_note = pn.pane.HTML("", stylesheets=[DETAIL_CSS], sizing_mode="stretch_width")
        self.prev = pn.widgets.Button(name="‹ Previous", width=110, disabled=True, css_classes=["gl-seg-prev"])
        self.next = pn.widgets.Button(name="Next ›", width=110, disabled=True, css_classes=["gl-seg-next"])
        self.prev.on_click(lambda _e: self.move(-1))
        self.next.on_click(lambda _e: self.move(1))
        self.download = pn.widgets.FileDownload(callback=self._csv, filename=f"{_slug(s['name'])}.csv",
                                                label="Download members (CSV)", button_type="primary", width=240,
                                                css_classes=["gl-seg-csv"])
        self.chart = pn.Column(sizing_mode="stretch_width")
        self.actions = pn.Column(sizing_mode="stretch_width")
        self.show_json = pn.widgets.Checkbox(name="Advanced: show rule JSON", css_classes=["gl-seg-json-toggle"])
        rule_json = pn.pane.Markdown(f"```json\n{json.dumps(s.get('rules'), indent=2)}\n```", visible=False,
                                     css_classes=["gl-seg-json"], sizing_mode="stretch_width")
        self.show_json.link(rule_json, value="visible")
        try:
            changes = (client.get_optional(f"{self.base}/changes", limit=12) or {}).get("changes") or []
        except ApiError:
            changes = []
        self.layout = pn.Column(
            self._header(), kpi_strip(self._cards()),
            section_title("Who is in it"),
            pn.pane.HTML(rule_html(s.get("rules") or {"all": []}, self.cat), stylesheets=[DETAIL_CSS],
                         sizing_mode="stretch_width", margin=(0, 10)),
            pn.Row(self.show_json), rule_json,
            section_title("Members"), self.members_note, self.members,
            pn.Row(self.prev, self.next, self.download),
            section_title("Entered and exited over time"), self.chart,
            section_title("Latest changes"),
            pn.pane.HTML(changes_html(changes), stylesheets=[DETAIL_CSS], sizing_mode="stretch_width"),
            self.actions, sizing_mode="stretch_width")
        self.load_members()
        self._actions()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.onload(self.draw_chart)
        else:
            self.draw_chart()

    def _header(self) -> pn.pane.HTML:
        s = self.seg
        badge = '<span class="gl-seg-badge">system</span>' if s.get("system") else ""
        links = ['<a href="?page=segments">All segments</a>',
                 f'<a class="gl-seg-search" href="?page=customers&segment={quote(self.id, safe="")}">Search these '
                 "customers</a>"]
        if not s.get("system"):
            links.append(f'<a class="gl-seg-edit" href="?page=segments&edit={quote(self.id, safe="")}">Edit the rule'
                         "</a>")
        return pn.pane.HTML(
            f'<div class="gl-seg-title">{html.escape(s["name"])}{badge}</div>'
            f'<div class="gl-note">{html.escape(s.get("description") or "")}</div>'
            f'<div class="gl-seg-links">{"".join(links)}</div>', stylesheets=[DETAIL_CSS], sizing_mode="stretch_width")

    def _cards(self) -> list[dict[str, Any]]:
        s = self.seg
        size = f"{s['count']:,}" if isinstance(s.get("count"), int) else "—"
        return [{"title": "Customers", "value": size, "key": "seg-size",
                 "sub": None if isinstance(s.get("count"), int) else "not computed yet"},
                {"title": "Entered last update", "value": number(s.get("entered_last")), "key": "seg-entered"},
                {"title": "Exited last update", "value": number(s.get("exited_last")), "key": "seg-exited"},
                {"title": "Updated", "value": day(s.get("computed_at")) if s.get("computed_at") else "—",
                 "key": "seg-updated", "small": True}]

    def move(self, step: int) -> None:
        self.page = max(1, self.page + step)
        self.load_members()

    def load_members(self) -> None:
        """One page of members."""
        try:
            res = self.client.get(f"{self.base}/members", page=self.page, page_size=PAGE_SIZE)
        except ApiError as e:
            self.members.object = f'<div class="gl-seg-error">{html.escape(e.message)}</div>'
            return
        items = res.get("items") or res.get("members") or []
        total = res.get("total", len(items))
        pages = res.get("pages") or max(1, -(-int(total) // PAGE_SIZE))
        self.members.object = f'<div class="gl-seg-members">{results_table(items)}</div>'
        self.members_note.object = (f'<div class="gl-note gl-seg-members-count">{count_text(int(total))}'
                                    f'{f" — page {self.page} of {pages}" if pages > 1 else ""}</div>')
        self.prev.disabled = self.page <= 1
        self.next.disabled = self.page >= pages

    def _csv(self) -> io.BytesIO:
        """Every member as CSV, fetched through the API when the button is clicked."""
        try:
            return io.BytesIO(self.client.get_bytes(f"{self.base}/members", format="csv"))
        except ApiError as e:
            self.members_note.object = f'<div class="gl-seg-error">Download failed: {html.escape(e.message)}</div>'
            return io.BytesIO(b"")

    def draw_chart(self) -> None:
        """The entered / exited bars (drawn after the numbers)."""
        history = self.seg.get("history") or []
        if not history:
            self.chart.objects = [note("No updates recorded yet.")]
            return
        if not any(h.get("entered") or h.get("exited") for h in history):
            first = history[0]
            self.chart.objects = [note(f"No one has entered or left since it was first computed on "
                                       f"{day(first.get('at'))} ({count_text(int(first.get('count') or 0))}).")]
            return
        try:
            self.chart.objects = [history_chart(history)]
        except Exception as e:  # a chart failure must not hide the members
            self.chart.objects = [error_alert(e, "the chart")]

    def _actions(self) -> None:
        if self.seg.get("system"):
            self.actions.objects = [note("A system segment: built in, kept up to date, and cannot be deleted.")]
            return
        delete = pn.widgets.Button(name="Delete segment", button_type="danger", button_style="outline", width=160,
                                   css_classes=["gl-seg-delete"])
        delete.on_click(lambda _e: self._confirm())
        self.actions.objects = [section_title("Delete"), delete]

    def _confirm(self) -> None:
        yes = pn.widgets.Button(name="Yes, delete it", button_type="danger", width=150,
                                css_classes=["gl-seg-delete-confirm"])
        no = pn.widgets.Button(name="Cancel", width=100)
        yes.on_click(lambda _e: self.delete())
        no.on_click(lambda _e: self._actions())
        self.actions.objects = [section_title("Delete"),
                                note(f"Delete “{self.seg['name']}” for good? This cannot be undone."),
                                pn.Row(yes, no)]

    def delete(self) -> bool:
        """Delete the segment and say so in place of the page."""
        try:
            self.client.delete(self.base)
        except ApiError as e:
            self.actions.objects = [error_alert(e), *self.actions.objects[-1:]]
            return False
        self.layout.objects = [pn.pane.HTML(
            f'<div class="gl-seg-deleted">Deleted “{html.escape(self.seg["name"])}”.</div>'
            '<div class="gl-seg-links"><a href="?page=segments">All segments</a></div>',
            stylesheets=[DETAIL_CSS], sizing_mode="stretch_width")]
        return True

