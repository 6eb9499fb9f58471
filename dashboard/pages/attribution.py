"""Attribution: who gets credit for each sale under every model, side by side, and how far each model moves credit
away from last click; with the marketing mix model's incremental shares beside them when a model is fitted.
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any

import pandas as pd
import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import KPI_CSS, TABLE_CSS, DateRange, error_alert, loading, note, section_title
from dashboard.format import money, number

TITLE = "Attribution"
SECTION = "Marketing"
ORDER = 30

DEFAULT_SELECTION = ["last_click", "first_click", "linear", "time_decay", "position_based", "markov", "shapley",
                     "incremental", "causal"]
COLORS = ["#5f6b7a", "#2f6fde", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
          "#1d2733"]
PAGE_CSS = TABLE_CSS + """
.gl-table th {text-align: right; color: #5f6b7a; font-weight: 600; border-bottom: 1px solid #e3e6ea; padding: 5px 8px;}
.gl-table th:first-child, .gl-table td:first-child {text-align: left;}
.gl-table td {text-align: right; border-bottom: 1px solid #f0f2f4; padding: 5px 8px; white-space: nowrap;}
.gl-up {color: #1a7f37;} .gl-down {color: #c62828;} .gl-shift {font-size: 12px; margin-left: 4px;}
.gl-desc dt {font-weight: 600; margin-top: 8px;} .gl-desc dd {margin: 2px 0 0 0; color: #3b4652;}
.gl-iv {color: #5f6b7a; font-size: 12px;}
.gl-attr-warning, .gl-attr-disagree {border-left: 3px solid #e0a800; background: #fff8e1; padding: 6px 10px;
  margin: 4px 0; font-size: 13px;}
.gl-attr-disagree {border-left-color: #2f6fde; background: #eef4fd;}
"""


def _pts(x: float) -> str:
    """A change of share in percentage points, signed: ``+12.3 pts``."""
    v = round(x * 100, 1)
    return "±0 pts" if v == 0 else f"{v:+.1f} pts"


def share_frame(result: dict[str, Any]) -> pd.DataFrame:
    """Long table (channel, model, share) of the models in the result, in the result's order."""
    rows = [{"channel": ch, "model": _label(result, m), "share": v["share"]}
            for m, credits in result["models"].items() for ch, v in credits.items()]
    return pd.DataFrame(rows)


def credit_chart(result: dict[str, Any]) -> pn.viewable.Viewable:
    """Grouped bars: each channel's share of conversion credit under each model (and the MMM when present)."""
    import hvplot.pandas  # noqa: F401  (late import: numbers first, charts after)
    from bokeh.models import NumeralTickFormatter

    df = share_frame(result)
    if result.get("mmm"):
        mmm = pd.DataFrame([{"channel": c, "model": "MMM incremental", "share": s} for c, s in result["mmm"].items()
                            if c in set(df["channel"])])
        df = pd.concat([df, mmm], ignore_index=True)
    models = list(dict.fromkeys(df["model"]))
    # one colour per model whatever the selection: its place among every model the API offers
    every = [*(result.get("available") or {}).values(), "MMM incremental"]
    colors = [COLORS[every.index(m) % len(COLORS)] if m in every else COLORS[-1] for m in models]
    plot = df.hvplot.bar(
        x="channel", y="share", by="model", height=380, responsive=True, ylabel="share of conversions", xlabel="",
        yformatter=NumeralTickFormatter(format="0%"), color=colors, legend="right",
        title="Share of conversion credit by channel under each model", rot=0,
    ).opts(tools=["hover"], multi_level=False)
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=380, linked_axes=False)


def shift_table(result: dict[str, Any]) -> pn.pane.HTML:
    """Channels × models: share of credit, and each model's shift against last click in points."""
    models = list(result["models"])
    base = result["models"].get("last_click")
    channels = list(result["channels"])
    mmm = result.get("mmm") or None
    head = "<tr><th>Channel</th>" + "".join(f"<th>{html.escape(_label(result, m))}</th>" for m in models)
    head += "<th>MMM incremental</th>" if mmm else ""
    head += "</tr>"
    body = []
    for ch in channels:
        cells = [f"<td>{html.escape(ch)}</td>"]
        for m in models:
            s = result["models"][m][ch]["share"]
            shift = ""
            if base is not None and m != "last_click":
                d = s - base[ch]["share"]
                cls = "gl-up" if d > 0.0005 else ("gl-down" if d < -0.0005 else "")
                shift = f"<span class='gl-shift {cls}'>{_pts(d)}</span>"
            cells.append(f"<td>{s:.1%}{shift}</td>")
        if mmm:
            cells.append(f"<td>{mmm[ch]:.1%}</td>" if ch in mmm else "<td>—</td>")
        body.append(f"<tr class='gl-attr-row'>{''.join(cells)}</tr>")
    return pn.pane.HTML(f"<table class='gl-table gl-attr-table'>{head}{''.join(body)}</table>",
                        stylesheets=[PAGE_CSS], sizing_mode="stretch_width")


def headline(result: dict[str, Any]) -> str:
    """One sentence from the numbers: the data-driven view that moves credit most, against last click."""
    base = result["models"].get("last_click")
    candidates = [m for m in ("causal", "incremental", "markov", "shapley") if m in result["models"]]
    if base is None or not candidates:
        return ""
    m = candidates[0]
    shifts = {ch: result["models"][m][ch]["share"] - base[ch]["share"] for ch in result["channels"]}
    gain = max(shifts, key=shifts.get)
    loss = min(shifts, key=shifts.get)
    if shifts[gain] <= 0.005 and shifts[loss] >= -0.005:
        return f"{_label(result, m)} and last click agree within half a point on every channel."
    return (f"Compared with last click, {_label(result, m)} gives {gain} {shifts[gain] * 100:.1f} points more of the "
            f"credit ({base[gain]['share']:.0%} → {result['models'][m][gain]['share']:.0%}) and {loss} "
            f"{-shifts[loss] * 100:.1f} points less ({base[loss]['share']:.0%} → "
            f"{result['models'][m][loss]['share']:.0%}).")


def _iv(interval: list[float] | None) -> str:
    return f"<span class='gl-iv'>{interval[0]:.0%}–{interval[1]:.0%}</span>" if interval else ""


LEVEL_WORDS = {"high": "strong", "moderate": "some", "low": "little", "unknown": "cannot check", None: ""}


def unified_table(unified: dict[str, Any]) -> pn.pane.HTML:
    """Per channel: the causal journey model's share, the MMM's, and the reconciled share, with 90% intervals."""
    has_mmm = any(r["mmm"] is not None for r in unified["channels"])
    head = ("<tr><th>Channel</th><th>Journeys (causal model)</th>" + ("<th>MMM</th>" if has_mmm else "")
            + "<th>Reconciled</th><th>Intent bias in journeys</th></tr>")
    body = []
    for r in unified["channels"]:
        bias = "sign of intent, no credit" if r["intent_signal"] else LEVEL_WORDS.get(r["confounding"], "")
        mmm = (f"<td>{r['mmm']:.1%}</td>" if r["mmm"] is not None else "<td>—</td>") if has_mmm else ""
        body.append(f"<tr class='gl-unified-row'><td>{html.escape(r['channel'])}</td>"
                    f"<td>{r['journeys']:.1%} {_iv(r['journeys_interval'])}</td>{mmm}"
                    f"<td><b>{r['reconciled']:.1%}</b> {_iv(r['reconciled_interval'])}</td>"
                    f"<td>{html.escape(bias)}</td></tr>")
    return pn.pane.HTML(f"<table class='gl-table gl-unified-table'>{head}{''.join(body)}</table>",
                        stylesheets=[PAGE_CSS], sizing_mode="stretch_width")


def unified_notes(unified: dict[str, Any]) -> list[pn.viewable.Viewable]:
    """Where journeys and the MMM disagree, and the confounding warnings, as computed by the API."""
    out = []
    if not unified["calibrated"]:
        out.append(note("No marketing mix model covers these channels yet: the reconciled view equals the journey "
                        "model until one is fitted."))
    for text in unified["disagreements"]:
        out.append(pn.pane.HTML(f"<div class='gl-attr-disagree'>{html.escape(text)}</div>", stylesheets=[PAGE_CSS],
                                sizing_mode="stretch_width"))
    for text in unified["warnings"]:
        out.append(pn.pane.HTML(f"<div class='gl-attr-warning'>{html.escape(text)}</div>", stylesheets=[PAGE_CSS],
                                sizing_mode="stretch_width"))
    return out


def _label(result: dict[str, Any], model: str) -> str:
    """A model's display name, as the API names it."""
    return (result.get("labels") or {}).get(model) or (result.get("available") or {}).get(model, model)


def descriptions(result: dict[str, Any]) -> pn.pane.HTML:
    """What each model does, in plain language (from the API)."""
    items = "".join(f"<dt>{html.escape(_label(result, m))}</dt><dd>{html.escape(text)}</dd>"
                    for m, text in result["descriptions"].items())
    if result.get("mmm"):
        items += ("<dt>MMM incremental</dt><dd>Each channel's share of the revenue the marketing mix model "
                  "attributes to it from spend and sales over time (no journeys needed); shown for comparison.</dd>")
    return pn.pane.HTML(f"<dl class='gl-desc'>{items}</dl>", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")


class AttributionPage:
    """The Attribution screen for one session: re-queries the API when the range or the model selection changes."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.status = pn.Column(sizing_mode="stretch_width")
        self.summary = pn.Column(sizing_mode="stretch_width")
        self.chart = pn.Column(loading("Loading chart…", height=380), sizing_mode="stretch_width")
        self.table = pn.Column(sizing_mode="stretch_width")
        self.desc = pn.Column(sizing_mode="stretch_width")
        self.unified = pn.Column(sizing_mode="stretch_width")
        self.result: dict[str, Any] | None = None
        self._painted = False
        self.models = pn.widgets.MultiChoice(name="Models", value=list(DEFAULT_SELECTION),
                                             sizing_mode="stretch_width", min_width=300)
        try:
            first = client.get("/api/attribution", models=",".join(DEFAULT_SELECTION))
            self.models.options = {v: k for k, v in first["available"].items()}
        except ApiError as e:
            self.layout = pn.Column(error_alert(e, "attribution"),
                                    note("Attribution needs customer journeys (journey_id, timestamp, channel, "
                                         "converted, revenue): import them on the Data page."),
                                    sizing_mode="stretch_width")
            return
        rng = first.get("data_range") or {}
        self.range = None
        controls: list[pn.viewable.Viewable] = []
        if rng.get("start_date") and rng.get("end_date"):
            self.range = DateRange(date.fromisoformat(rng["start_date"]), date.fromisoformat(rng["end_date"]),
                                   default="All data")
            self.range.param.watch(lambda _e: self.refresh(), "value")
            controls.append(self.range)
        self.models.param.watch(lambda _e: self.refresh(), "value")
        self.layout = pn.Column(
            pn.Row(*controls, self.models, sizing_mode="stretch_width"),
            self.status,
            self.summary,
            self.chart,
            section_title("Credit share by model, and the shift against last click"),
            self.table,
            section_title("Journeys, marketing mix model and the reconciled view"),
            self.unified,
            section_title("How each model assigns credit"),
            self.desc,
            sizing_mode="stretch_width",
        )
        self._show(first, charts=False)
        pn.state.onload(self._after_paint)

    def _after_paint(self) -> None:
        self._painted = True
        self._render_chart()

    def refresh(self) -> None:
        """Fetch the credits for the selected range and models and redraw."""
        if not self.models.value:
            self.status.objects = [note("Choose at least one model.")]
            return
        self.status.objects = [loading("Computing attribution…", height=40)]
        params: dict[str, Any] = {"models": ",".join(self.models.value)}
        if self.range is not None:
            params.update(self.range.params)
        try:
            result = self.client.get("/api/attribution", **params)
        except ApiError as e:
            self.status.objects = [error_alert(e, "attribution")]
            return
        self._show(result, charts=True)

    def _show(self, result: dict[str, Any], charts: bool) -> None:
        self.result = result
        self.status.objects = []
        t = result["totals"]
        period = f" ending {result['start_date']} to {result['end_date']}" if result.get("start_date") else ""
        text = (f"{number(t['journeys'])} journeys{period}: {number(t['conversions'])} conversions, "
                f"{money(t['revenue'])} revenue, {number(t['paths'])} distinct paths across {t['channels']} channels.")
        parts: list[pn.viewable.Viewable] = [pn.pane.HTML(f"<div class='gl-attr-summary'>{html.escape(text)}</div>",
                                                          stylesheets=[KPI_CSS], sizing_mode="stretch_width")]
        line = headline(result)
        if line:
            parts.append(pn.pane.HTML(f"<div class='gl-insight gl-attr-headline'>{html.escape(line)}</div>",
                                      stylesheets=[KPI_CSS], sizing_mode="stretch_width"))
        for text_note in result.get("notes") or []:
            parts.append(note(text_note))
        if not result.get("mmm"):
            parts.append(note("No marketing mix model has been fitted on the current data yet; its incremental "
                              "shares appear beside the attribution models once it has."))
        self.summary.objects = parts
        self.table.objects = [shift_table(result)]
        unified = result.get("unified")
        self.unified.objects = ([unified_table(unified), *unified_notes(unified)] if unified else
                                [note("The reconciled view needs the causal journey model: add it to the models.")])
        self.desc.objects = [descriptions(result)]
        if charts and self._painted:
            self._render_chart()

    def _render_chart(self) -> None:
        if self.result is None:
            return
        try:
            self.chart.objects = [credit_chart(self.result)]
        except Exception as e:  # a chart failure must not hide the numbers
            self.chart.objects = [error_alert(e, "the chart")]

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout


def page(client: ApiClient) -> pn.viewable.Viewable:
    """Build the Attribution page for one session."""
    return AttributionPage(client).layout
