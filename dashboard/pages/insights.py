"""Customer Insights: how healthy the customer base is, where the money is, and how far the predictions can be trusted.

``?page=insights`` shows, from ``GET /api/customers/insights``: customer health (healthy / warning / critical by
churn risk, with the revenue at stake in each band); the top opportunities in dollars, ranked as the API ranks them,
each with its assumptions as number inputs (changing one asks the API again with
``<opportunity id>.<assumption>=value`` and updates the dollars) and a "Save as segment" button; segment
performance (average lifetime value and 90-day retention); the segments found by clustering, each savable as a rule;
and the churn model cards with their out-of-time evaluation against baselines and their reliability tables.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from typing import Any

import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import error_alert, note, section_title
from dashboard.format import day, number
from dashboard.insight_models import (
    MODELS_CSS,
    calibration_chart,
    calibration_html,
    ltv_check_html,
    model_card_html,
    model_message_html,
    model_targets,
)
from dashboard.insight_views import (
    INSIGHTS_CSS,
    assumption_spec,
    discovered_html,
    health_html,
    opportunity_html,
    performance_chart,
    performance_table,
    to_api_value,
    trait_words,
)
from dashboard.pages.segments import count_text, segment_href
from dashboard.segment_values import Catalogue

TITLE = "Insights"
SECTION = "Customers"
ORDER = 40

ROUTE = "/api/customers/insights"
PAGE_CSS = INSIGHTS_CSS + MODELS_CSS
CARD_STYLES = {"border": "1px solid #e3e6ea", "border-radius": "10px", "padding": "6px 10px", "background": "#fff"}


def _html(text: str = "", **kw: Any) -> pn.pane.HTML:
    return pn.pane.HTML(text, stylesheets=[PAGE_CSS], sizing_mode="stretch_width", **kw)


class SaveAsSegment:
    """A "Save as segment" button: POSTs ``/api/segments`` with a name, description and rule, then links to the
    saved segment (a name already taken links to the segment of that name)."""

    def __init__(self, client: ApiClient, name: str, description: str, rule: Callable[[], Any] | Any,
                 key: str = "") -> None:
        self.client, self.name, self.description = client, name, description
        self.rule = rule if callable(rule) else (lambda: rule)
        css = ["gl-save-segment", *([f"gl-save-{key}"] if key else [])]
        self.button = pn.widgets.Button(name="Save as segment", button_type="primary", width=160, css_classes=css)
        self.result = _html(css_classes=["gl-save-result"])
        self.button.on_click(self._clicked)
        self.saved: dict[str, Any] | None = None

    async def _clicked(self, _event: Any) -> None:
        """In a browser session: the request off the event loop (saving computes the segment), the answer shown
        from the loop (so the page is updated at once)."""
        self.button.disabled = True
        try:
            self._show(await asyncio.to_thread(self._request))
        finally:
            self.button.disabled = False

    def save(self) -> dict[str, Any] | None:
        """Create the segment; the saved segment (or the one already holding the name), or None with the reason."""
        return self._show(self._request())

    def _request(self) -> tuple[str, dict[str, Any]] | ApiError:
        body = {"name": self.name, "description": self.description, "rules": self.rule()}
        try:
            return "Saved", self.client.post("/api/segments", body)
        except ApiError as e:
            seg = self._existing() if e.status == 409 else None
            return ("Already saved as", seg) if seg is not None else e

    def _show(self, res: tuple[str, dict[str, Any]] | ApiError) -> dict[str, Any] | None:
        if isinstance(res, ApiError):
            self.result.object = f'<div class="gl-error">Could not save: {html.escape(res.message)}</div>'
            return None
        verb, seg = res
        size = f" — {count_text(seg['count'])}" if isinstance(seg.get("count"), int) else ""
        self.result.object = (f'<div class="gl-saved">{verb} <a class="gl-saved-segment-link" '
                              f'href="{segment_href(str(seg["id"]))}">{html.escape(seg.get("name") or self.name)}'
                              f"</a>{size}.</div>")
        self.saved = seg
        return seg

    def _existing(self) -> dict[str, Any] | None:
        try:
            listing = (self.client.get_optional("/api/segments") or {}).get("segments") or []
        except ApiError:
            return None
        return next((s for s in listing if s.get("name") == self.name), None)

    def view(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.button), self.result, sizing_mode="stretch_width")


class OpportunityCard:
    """One opportunity: its figures, its assumptions as number inputs and its save button."""

    def __init__(self, client: ApiClient, opp: dict[str, Any], rank: int, on_edit: Callable[[OpportunityCard], None]):
        self.opp, self.rank, self.id = opp, rank, str(opp["id"])
        self.specs = {a["name"]: assumption_spec(a) for a in opp.get("assumptions") or []}
        self.defaults = {a["name"]: a.get("value") for a in opp.get("assumptions") or []}
        self.inputs: dict[str, pn.widgets.FloatInput] = {}
        for name, spec in self.specs.items():
            w = pn.widgets.FloatInput(name=spec["label"], value=spec["value"], start=spec["start"], end=spec["end"],
                                      step=spec["step"], width=max(190, min(340, 8 * len(spec["label"]) + 20)),
                                      css_classes=["gl-assumption", f"gl-assumption-{self.id}-{name}"])
            w.param.watch(lambda _e: on_edit(self), "value")
            self.inputs[name] = w
        self.figures = _html(opportunity_html(opp, rank), css_classes=["gl-opp-figures-pane"])
        self.status = _html()
        self.saver = SaveAsSegment(client, opp.get("title") or self.id, opp.get("description") or "",
                                   lambda: self.opp.get("rule"), key=f"opp-{self.id}")
        parts: list[Any] = [self.figures]
        if self.inputs:
            parts += [_html('<div class="gl-note">Assumptions — change them to see the dollars follow:</div>'),
                      pn.Row(*self.inputs.values(), sizing_mode="stretch_width")]
        parts += [self.status, self.saver.view()]
        self.view = pn.Column(*parts, sizing_mode="stretch_width", css_classes=["gl-opp", f"gl-opp-{self.id}"],
                              styles=CARD_STYLES, margin=(6, 10))

    def params(self) -> dict[str, float]:
        """The assumptions changed from the API's defaults, as query parameters ``<id>.<name>``."""
        out = {}
        for name, w in self.inputs.items():
            if w.value is None:
                continue
            value = to_api_value(w.value, self.specs[name])
            default = self.defaults.get(name)
            if default is None or abs(value - float(default)) > 1e-12 * max(1.0, abs(float(default))):
                out[f"{self.id}.{name}"] = value
        return out

    def updating(self) -> None:
        self.figures.object = opportunity_html(self.opp, self.rank, stale=True)
        self.status.object = '<div class="gl-updating">Updating…</div>'

    def update(self, opp: dict[str, Any], rank: int) -> None:
        """New figures for the same opportunity (the inputs keep what the user typed)."""
        self.opp, self.rank = opp, rank
        self.figures.object = opportunity_html(opp, rank)
        self.status.object = ""

    def failed(self, err: ApiError) -> None:
        self.figures.object = opportunity_html(self.opp, self.rank, stale=True)
        self.status.object = f'<div class="gl-error gl-opp-error">{html.escape(err.message)}</div>'


class InsightsPage:
    """The whole page for one session; ``live`` (a browser session) asks the API again off the event loop."""

    def __init__(self, client: ApiClient, live: bool = False) -> None:
        self.client, self.live = client, live
        self._seq = 0
        self.cards: dict[str, OpportunityCard] = {}
        self.savers: list[SaveAsSegment] = []
        self.layout = pn.Column(sizing_mode="stretch_width")
        try:
            self.data = client.get(ROUTE)
        except ApiError as e:
            self.data = None
            kind = "warning" if e.status == 404 else "danger"
            self.layout.objects = [pn.pane.Alert(e.message if e.status == 404 else f"Could not load the insights: "
                                                 f"{e.message}", alert_type=kind, sizing_mode="stretch_width",
                                                 css_classes=["gl-insights-missing"])]
            return
        self.cat = self._catalogue()
        self.calibration: list[tuple[pn.Column, list[dict[str, Any]]]] = []
        d = self.data
        as_of = f"Predictions as of {day(d['as_of'])}. " if d.get("as_of") else ""
        self.opportunities = pn.Column(sizing_mode="stretch_width")
        self.layout.objects = [
            note(f"{as_of}Churn risk is the predicted chance a customer stops buying (or cancels) in the coming "
                 "months; revenue at stake is the value expected to be lost with them."),
            section_title("Customer health"), *self._health(),
            section_title("Top opportunities"), self.opportunities,
            section_title("Segment performance"), *self._performance(),
            section_title("Segments discovered in the data"), *self._discovered(),
            section_title("Churn models: how far to trust the predictions"), *self._models(),
        ]
        self._opportunities(d.get("opportunities") or [])
        self.unavailable = _html(unavailable_html(d.get("opportunities_unavailable") or {}), margin=(0, 10))
        if self.unavailable.object:
            self.opportunities.objects = [*self.opportunities.objects, self.unavailable]
        if live:
            pn.state.onload(self.draw_charts)
        else:
            self.draw_charts()

    def _catalogue(self) -> Catalogue:
        """The field catalogue, so rules read in words (empty when the API has none)."""
        try:
            fields = self.client.get_optional("/api/segments/fields") or {}
            listing = (self.client.get_optional("/api/segments") or {}).get("segments") or []
        except ApiError:
            fields, listing = {}, []
        return Catalogue.from_api(fields, listing)

    # --- sections ------------------------------------------------------------------------------------------------
    def _health(self) -> list[Any]:
        h = self.data.get("health") or {}
        parts: list[Any] = [_html(health_html(h), css_classes=["gl-health-pane"])]
        if h.get("unscored"):
            parts.append(note(f"{number(h.get('scored'))} customers have a churn prediction; "
                              f"{number(h.get('unscored'))} do not (no prediction could be made for them yet)."))
        return parts

    def _opportunities(self, opps: list[dict[str, Any]]) -> None:
        if not opps:
            self.opportunities.objects = [note("No opportunity found in the current data.")]
            return
        for rank, opp in enumerate(opps, 1):
            card = OpportunityCard(self.client, opp, rank, self.edited)
            self.cards[card.id] = card
        self.opportunities.objects = [c.view for c in self.cards.values()]

    def _performance(self) -> list[Any]:
        rows = self.data.get("segment_performance") or []
        self.performance = pn.Column(sizing_mode="stretch_width")
        if not rows:
            return [note("No segment has been computed yet.")]
        return [self.performance, _html(performance_table(rows, segment_href), margin=(0, 10))]

    def _discovered(self) -> list[Any]:
        found = self.data.get("discovered") or {}
        segs = found.get("segments") or []
        if not segs:
            return [note(found.get("message") or "No natural groups were found in the current data.")]
        cards = []
        for i, seg in enumerate(segs):
            traits = "; ".join(_plain(trait_words(t, self.cat)) for t in seg.get("traits") or [])
            saver = SaveAsSegment(self.client, seg.get("name") or f"Group {i + 1}",
                                  f"Found by clustering. {traits}".strip(), seg.get("rule"), key=f"disc-{i}")
            self.savers.append(saver)
            cards.append(pn.Column(_html(discovered_html(seg, self.cat)), saver.view(), width=440, styles=CARD_STYLES,
                                   margin=(6, 10), css_classes=["gl-disc", f"gl-disc-{i}"]))
        k = found.get("k")
        intro = note(f"Clustering the customers found {k} groups; each is described by a rule you can save "
                     "as a segment.") if k else note("Each group is described by a rule you can save as a segment.")
        return [intro, pn.FlexBox(*cards, sizing_mode="stretch_width")]

    def _models(self) -> list[Any]:
        models = self.data.get("models") or {}
        messages = models.get("messages") or {}
        out: list[Any] = []
        for target in model_targets(models):
            card = models.get(target)
            if not card:
                out.append(_html(f'<div class="gl-model gl-model-{html.escape(target)}">'
                                 f"{model_message_html(target, messages.get(target))}</div>"))
                continue
            bins = ((card.get("evaluation") or {}).get("model") or {}).get("calibration") or []
            chart = pn.Column(width=380)
            self.calibration.append((chart, bins))
            out.append(pn.Column(
                _html(model_card_html(target, card)),
                _html('<div class="gl-model-sub">Can the probabilities be taken at face value? Customers ranked by '
                      "predicted risk, cut into tenths</div>"),
                pn.Row(_html(calibration_html(bins), min_width=420), chart, sizing_mode="stretch_width"),
                sizing_mode="stretch_width", css_classes=["gl-model", f"gl-model-{target}"], styles=CARD_STYLES,
                margin=(6, 10)))
        if "ltv" in models or "ltv" in messages:
            text = ltv_check_html(models.get("ltv"), messages.get("ltv") or messages.get("ltv_holdout"))
            out.append(_html(f'<div class="gl-model gl-model-ltv">{text}</div>'))
        return out or [note("No churn model is available.")]

    def draw_charts(self) -> None:
        """The charts, after the numbers (a chart failure never hides them)."""
        rows = self.data.get("segment_performance") or []
        try:
            if rows:
                self.performance.objects = [performance_chart(rows)]
        except Exception as e:
            self.performance.objects = [error_alert(e, "the chart")]
        for pane, bins in self.calibration:
            try:
                pane.objects = [calibration_chart(bins)] if bins else []
            except Exception as e:
                pane.objects = [error_alert(e, "the chart")]

    # --- assumptions ---------------------------------------------------------------------------------------------
    def params(self) -> dict[str, float]:
        """Every changed assumption of every opportunity."""
        out: dict[str, float] = {}
        for card in self.cards.values():
            out.update(card.params())
        return out

    def edited(self, card: OpportunityCard) -> None:
        """An assumption changed: ask again with all changed values; only the latest answer is shown."""
        self._seq += 1
        seq, params = self._seq, self.params()
        if not self.live:
            self.apply(seq, card, self._fetch(params))
            return
        card.updating()

        async def later() -> None:
            self.apply(seq, card, await asyncio.to_thread(self._fetch, params))

        pn.state.execute(later)

    def _fetch(self, params: dict[str, float]) -> dict[str, Any] | ApiError:
        try:
            return self.client.get(ROUTE, **params)
        except ApiError as e:
            return e

    def apply(self, seq: int, card: OpportunityCard, res: dict[str, Any] | ApiError) -> bool:
        """Show the answer to edit ``seq``; False when a newer edit was made meanwhile."""
        if seq != self._seq:
            return False
        if isinstance(res, ApiError):
            card.failed(res)
            return True
        opps = res.get("opportunities") or []
        for rank, opp in enumerate(opps, 1):
            if str(opp.get("id")) in self.cards:
                self.cards[str(opp["id"])].update(opp, rank)
        order = [str(o.get("id")) for o in opps if str(o.get("id")) in self.cards]
        rest = [i for i in self.cards if i not in order]
        self.unavailable.object = unavailable_html(res.get("opportunities_unavailable") or {})
        self.opportunities.objects = [*(self.cards[i].view for i in order + rest),
                                      *([self.unavailable] if self.unavailable.object else [])]
        return True


def unavailable_html(skipped: dict[str, str] | list[Any]) -> str:
    """Opportunities the API could not value, with its reason (``""`` when there are none)."""
    items = skipped.items() if isinstance(skipped, dict) else [
        (s.get("id", ""), s.get("reason") or s.get("message") or "") if isinstance(s, dict) else (str(s), "")
        for s in skipped]
    rows = "".join(f"<li><b>{html.escape(str(oid).replace('_', ' ').capitalize())}</b>: {html.escape(str(why))}</li>"
                   for oid, why in items)
    return (f'<div class="gl-note gl-opp-unavailable">Not valued this time:<ul>{rows}</ul></div>' if rows else "")


def _plain(text: str) -> str:
    """HTML words as plain text (for a segment description)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text)).replace("▲ ", "").replace("▼ ", "").strip()


def page(client: ApiClient) -> pn.viewable.Viewable:
    """The Insights page."""
    live = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    try:
        return InsightsPage(client, live=live).layout
    except ApiError as e:
        return error_alert(e, "the insights")
