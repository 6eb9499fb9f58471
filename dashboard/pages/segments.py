"""Customer segments: build a rule with clicks, see who matches as you edit, save it, and browse saved segments.

``?page=segments`` shows the builder ("IF customer matches ALL / ANY / NONE of these", conditions on profile fields,
behaviour conditions on events, membership of other segments, nested groups to any depth), a live preview (count,
share of all customers, average lifetime value, churn risk when predicted, revenue of the last 12 months and a
sample of 20 people), the save form and the list of segments (system segments first) with their size and trend.
``?page=segments&segment=<id>`` opens one segment (:mod:`dashboard.segment_detail`); ``&edit=<id>`` loads a saved
segment's rule into the builder. The preview is debounced (~300 ms) and numbered, so a slow answer to an old rule
never replaces the answer to a newer one; an invalid rule shows the API's explanation in place.
"""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any
from urllib.parse import quote

import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import TABLE_CSS, error_alert, kpi_strip_html, note, section_title
from dashboard.format import day, money, number, share
from dashboard.pages.customers import profile_href
from dashboard.segment_builder import GroupBox, error_tokens
from dashboard.segment_values import BUILDER_CSS, Catalogue
from dashboard.segment_words import WORDS_CSS, sparkline_svg

TITLE = "Segments"
SECTION = "Customers"
ORDER = 30

DEBOUNCE_S = 0.3
PAGE_CSS = TABLE_CSS + BUILDER_CSS + WORDS_CSS + """
.gl-seg-headline {display: flex; align-items: baseline; gap: 14px; margin: 4px 5px 10px 5px;}
.gl-seg-count {font-size: 30px; font-weight: 650; color: #1d2733;}
.gl-seg-share {font-size: 15px; color: #5f6b7a;}
.gl-seg-stale {opacity: .45;}
.gl-seg-error {color: #c62828; background: #fdecea; border-radius: 8px; padding: 8px 12px; font-size: 14px;}
.gl-seg-pending {color: #9a6700; background: #fff4d6; border-radius: 8px; padding: 8px 12px; font-size: 14px;}
.gl-seg-updating {color: #5f6b7a; font-size: 13px;}
.gl-table a, .gl-seg-saved a {color: #2f6fde; text-decoration: none; font-weight: 600;}
.gl-seg-badge {display: inline-block; padding: 1px 7px; margin-left: 6px; border-radius: 9px; font-size: 11px;
               background: #eef1f4; color: #5f6b7a; text-transform: uppercase; letter-spacing: .03em;}
.gl-seg-in {color: #1a7f37;} .gl-seg-out {color: #c62828;}
.gl-seg-saved {color: #1a7f37; font-size: 14px;}
"""


def segment_href(segment_id: str) -> str:
    """Link to one segment's page."""
    return f"?page=segments&segment={quote(segment_id, safe='')}"


def count_text(n: int) -> str:
    """The exact size of a segment: ``1,847 customers``."""
    return f"{n:,} customer{'' if n == 1 else 's'}"


def preview_cards(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The preview's figures as KPI cards (churn risk only when the API predicts it; the share is in the
    headline)."""
    cards = [{"title": "Avg lifetime value", "value": money(res.get("avg_ltv")), "key": "seg-ltv"},
             {"title": "Avg orders", "value": "—" if res.get("avg_orders") is None else f"{res['avg_orders']:,.1f}",
              "key": "seg-orders"},
             {"title": "Revenue, last 12 months", "value": money(res.get("revenue_12m")), "key": "seg-revenue"}]
    if res.get("avg_churn_risk") is not None:
        cards.append({"title": "Avg churn risk", "value": share(res["avg_churn_risk"]), "key": "seg-churn"})
    return cards


def headline_html(res: dict[str, Any], stale: bool = False) -> str:
    """Count and share of base, the first thing a marketer reads."""
    base = res.get("base")
    of = f"{share(res.get('share'))} of {base:,} customers" if isinstance(base, int) else ""
    return (f'<div class="gl-seg-headline{" gl-seg-stale" if stale else ""}"><span class="gl-seg-count">'
            f'{count_text(int(res.get("count") or 0))}</span><span class="gl-seg-share">{of}</span></div>')


def people_table(items: list[dict[str, Any]], cls: str) -> str:
    """People (preview sample or members) as a table; each name links to the profile."""
    if not items:
        return f'<div class="{cls} gl-note">Nobody matches this rule.</div>'
    rows = "".join(
        f'<tr><td><a href="{profile_href(p["id"])}">{html.escape(p.get("name") or "(no name)")}</a></td>'
        f'<td>{html.escape(p.get("email") or "")}</td><td class="num">{money(p.get("lifetime_value"))}</td>'
        f'<td class="num">{number(p.get("total_orders"))}</td>'
        f'<td>{day(p.get("last_order_date")) if p.get("last_order_date") else "—"}</td>'
        f'<td>{html.escape(p.get("subscription_status") or "none")}</td></tr>' for p in items)
    head = ("<tr><th>Name</th><th>Email</th><th class='num'>Lifetime value</th><th class='num'>Orders</th>"
            "<th>Last order</th><th>Subscription</th></tr>")
    return f"<table class='gl-table {cls}'>{head}{rows}</table>"


def _changes(entered: Any, exited: Any) -> str:
    if entered is None and exited is None:
        return "—"
    return (f'<span class="gl-seg-in">+{number(entered or 0)}</span> / '
            f'<span class="gl-seg-out">−{number(exited or 0)}</span>')


def ordered(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """System segments first, each kind in the API's order."""
    return sorted(segments, key=lambda s: not s.get("system"))


def list_html(segments: list[dict[str, Any]]) -> str:
    """The saved segments: name (link), description, size, trend, entered / exited at the last update."""
    if not segments:
        return '<div class="gl-note gl-seg-list">No segments yet: build one above and save it.</div>'
    rows = []
    for s in ordered(segments):
        trend = [t.get("count") for t in s.get("trend") or []]
        spark = sparkline_svg(trend) or html.escape(" → ".join(number(v) for v in trend[-3:]))
        badge = '<span class="gl-seg-badge">system</span>' if s.get("system") else ""
        rows.append(
            f'<tr class="gl-seg-item"><td><a class="gl-seg-link" href="{segment_href(s["id"])}">'
            f'{html.escape(s["name"])}</a>{badge}</td><td>{html.escape(s.get("description") or "")}</td>'
            f'<td class="num gl-seg-size">{number(s.get("count"))}</td><td title="{html.escape(str(trend))}">{spark}'
            f'</td><td>{_changes(s.get("entered_last"), s.get("exited_last"))}</td>'
            f'<td>{day(s.get("computed_at")) if s.get("computed_at") else "—"}</td></tr>')
    head = ("<tr><th>Segment</th><th>Description</th><th class='num'>Customers</th><th>Trend</th>"
            "<th>Entered / exited</th><th>Updated</th></tr>")
    return f"<table class='gl-table gl-seg-list'>{head}{''.join(rows)}</table>"


class SegmentEditor:
    """Builder, live preview and save form for a new segment (or a saved one when ``segment`` is given)."""

    def __init__(self, client: ApiClient, cat: Catalogue, segment: dict[str, Any] | None = None,
                 live: bool = True, delay: float = DEBOUNCE_S, on_saved: Any = None) -> None:
        self.client, self.cat, self.segment, self.live, self.delay = client, cat, segment, live, delay
        self.on_saved = on_saved
        self._seq = 0  # the latest edit
        self._shown = 0  # the edit whose answer (or problem) is on screen
        self.result: dict[str, Any] | None = None
        self.builder = GroupBox(cat, self._changed, node=(segment or {}).get("rules"),
                                exclude=(segment or {}).get("id"))
        self.status = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width", margin=(0, 5))
        self.headline = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        self.cards = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width", margin=(0, 5))
        self.sample = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        self.show_json = pn.widgets.Checkbox(name="Advanced: show rule JSON", value=False,
                                             css_classes=["gl-seg-json-toggle"])
        self.json = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width", css_classes=["gl-seg-json"])
        self.show_json.param.watch(lambda _e: self._update_json(), "value")
        name, desc = (segment or {}).get("name", ""), (segment or {}).get("description") or ""
        self.name = pn.widgets.TextInput(name="Segment name", value=name, value_input=name, width=320,
                                         css_classes=["gl-seg-name-input"])
        self.description = pn.widgets.TextAreaInput(name="Description", value=desc, value_input=desc, height=70,
                                                    width=480, css_classes=["gl-seg-desc-input"])
        self.save_button = pn.widgets.Button(name="Save changes" if segment else "Save segment",
                                             button_type="primary", width=150, align="end",
                                             css_classes=["gl-seg-save"])
        self.save_button.on_click(lambda _e: self.save())
        self.saved = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        self.refresh()

    def rule(self) -> dict[str, Any]:
        """The rule as the API takes it."""
        return self.builder.to_json()

    def _changed(self) -> None:
        """Any edit: number it, then preview it after a short pause (or at once outside a browser session)."""
        self._seq += 1
        seq = self._seq
        self._update_json()
        if not self.live:
            self.refresh(seq)
            return
        self.status.object = '<div class="gl-seg-updating">Updating…</div>'

        async def later() -> None:
            await self._debounced(seq)

        pn.state.execute(later)

    async def _debounced(self, seq: int) -> None:
        """Wait out the typing; send only if this is still the latest edit; show the answer unless it is stale."""
        await asyncio.sleep(self.delay)
        if seq != self._seq:
            return
        rule = self.rule()
        if not self.builder.complete:
            self.show(seq, None)
            return
        try:
            res: Any = await asyncio.to_thread(self.client.post, "/api/segments/preview", {"rules": rule})
        except ApiError as e:
            res = e
        self.show(seq, res)

    def refresh(self, seq: int | None = None) -> None:
        """Preview the current rule now (blocking)."""
        seq = self._seq if seq is None else seq
        if not self.builder.complete:
            self.show(seq, None)
            return
        try:
            res: Any = self.client.post("/api/segments/preview", {"rules": self.rule()})
        except ApiError as e:
            res = e
        self.show(seq, res)

    def show(self, seq: int, res: dict[str, Any] | ApiError | None) -> bool:
        """Show the answer to edit ``seq`` (``None``: the rule is unfinished); False when a newer one is shown."""
        if seq < self._shown:
            return False
        self._shown = seq
        self.builder.clear_errors()
        if res is None:
            pos, row = self.builder.first_incomplete() or (0, None)
            self.status.object = (f'<div class="gl-seg-pending">Fill in the value of {row.what if row else "the"} '
                                  f'{pos} to update the preview.</div>')
            if row is not None:
                row.set_error("needs a value")
            self._dim()
            return True
        if isinstance(res, ApiError):
            self.status.object = f'<div class="gl-seg-error">{html.escape(res.message)}</div>'
            if res.status == 400 and res.message.startswith("rules"):  # the path names the row: mark it too
                target = self.builder.locate(error_tokens(res.message))
                target.set_error(res.message.split(":", 1)[-1].strip())
            self._dim()
            return True
        self.result = res
        self.status.object = ""
        self.headline.object = headline_html(res)
        self.cards.object = kpi_strip_html(preview_cards(res))
        sample = res.get("sample") or []
        as_of = f" · as of {day(res['as_of'])}" if res.get("as_of") else ""
        took = f" · counted in {res['elapsed_ms']:,.0f} ms" if res.get("elapsed_ms") is not None else ""
        self.sample.object = (people_table(sample, "gl-seg-sample") +
                              f'<div class="gl-note">A sample of {len(sample)} of the matching customers'
                              f'{as_of}{took}.</div>')
        return True

    def _dim(self) -> None:
        if self.result is not None:
            self.headline.object = headline_html(self.result, stale=True)

    def _update_json(self) -> None:
        self.json.visible = self.show_json.value
        if self.show_json.value:
            self.json.object = f"```json\n{json.dumps(self.rule(), indent=2)}\n```"

    def save(self) -> dict[str, Any] | None:
        """Create the segment (or save the edited one); the saved segment, or None with the reason shown."""
        name = (self.name.value_input or "").strip()
        if not name:
            self.saved.object = '<div class="gl-seg-error">Give the segment a name first.</div>'
            return None
        if not self.builder.complete:
            self.saved.object = '<div class="gl-seg-error">Fill in every condition before saving.</div>'
            return None
        body = {"name": name, "description": (self.description.value_input or "").strip(), "rules": self.rule()}
        try:
            if self.segment:
                seg = self.client.put(f"/api/segments/{quote(self.segment['id'], safe='')}", body)
            else:
                seg = self.client.post("/api/segments", body)
        except ApiError as e:
            self.saved.object = f'<div class="gl-seg-error">Could not save: {html.escape(e.message)}</div>'
            return None
        size = f" — {count_text(int(seg['count']))}" if isinstance(seg.get("count"), int) else ""
        self.saved.object = (f'<div class="gl-seg-saved">Saved <a class="gl-seg-saved-link" href="'
                             f'{segment_href(seg["id"])}">{html.escape(seg.get("name", name))}</a>{size}.</div>')
        if self.on_saved:
            self.on_saved(seg)
        return seg

    def view(self) -> pn.Column:
        return pn.Column(
            self.builder.view,
            section_title("Preview"), self.status, self.headline, self.cards, self.sample,
            pn.Row(self.show_json), self.json,
            section_title("Save"), pn.Row(self.name, self.description, self.save_button), self.saved,
            sizing_mode="stretch_width",
        )


class SegmentsPage:
    """The landing page: the editor above the list of saved segments."""

    def __init__(self, client: ApiClient, edit: str | None = None, live: bool = True) -> None:
        self.client = client
        fields = client.get("/api/segments/fields")
        self.segments = (client.get_optional("/api/segments") or {}).get("segments") or []
        self.cat = Catalogue.from_api(fields, self.segments)
        segment = client.get(f"/api/segments/{quote(edit, safe='')}") if edit else None
        self.editor = SegmentEditor(client, self.cat, segment, live=live, on_saved=lambda _s: self.reload())
        self.list = pn.pane.HTML(list_html(self.segments), stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        intro = (f"Editing “{segment['name']}”. Saving replaces its rule; members are recomputed."
                 if segment else "Describe who belongs in the segment; the preview updates as you edit.")
        self.layout = pn.Column(note(intro), self.editor.view(), section_title("Saved segments"), self.list,
                                sizing_mode="stretch_width")

    def reload(self) -> None:
        """Fetch the list again (after a save)."""
        try:
            self.segments = (self.client.get_optional("/api/segments") or {}).get("segments") or []
        except ApiError as e:
            self.list.object = f'<div class="gl-seg-error">{html.escape(e.message)}</div>'
            return
        self.cat.segments = {s["id"]: s["name"] for s in self.segments}
        self.list.object = list_html(self.segments)


def _arg(name: str) -> str | None:
    if not pn.state.session_args:
        return None
    arg = pn.state.session_args.get(name)
    return arg[0].decode() if arg else None


def page(client: ApiClient) -> pn.viewable.Viewable:
    """The Segments page; ``?segment=<id>`` opens one segment, ``?edit=<id>`` edits one."""
    live = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    seg_id, edit = _arg("segment"), _arg("edit")
    try:
        if seg_id:
            from dashboard.segment_detail import SegmentDetail

            return SegmentDetail(client, seg_id).layout
        return SegmentsPage(client, edit=edit, live=live).layout
    except ApiError as e:
        return error_alert(e, "segments")
