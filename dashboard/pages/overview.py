"""Overview: total spend, revenue and ROAS with period-over-period change, spend or revenue by channel over time,
the channel mix and quick insights.

The KPI cards come from one fast API call and render first; the chart library and the chart are loaded after the
page has painted, so the numbers are on screen before the heavier parts.
"""

from __future__ import annotations

import asyncio
import html
from datetime import date
from typing import Any

import pandas as pd
import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import (
    TABLE_CSS,
    DateRange,
    error_alert,
    kpi_strip,
    kpi_strip_html,
    loading,
    section_title,
)
from dashboard.format import money, ratio, share

TITLE = "Overview"
SECTION = "Marketing"
ORDER = 10

PAGE_CSS = TABLE_CSS + """
.gl-insight.positive::before {content: "▲ "; color: #1a7f37;}
.gl-insight.warning::before {content: "▼ "; color: #c62828;}
.gl-insight.info::before {content: "● "; color: #2f6fde;}
.gl-insight.model::before {content: "◆ "; color: #7b3fe4;}
"""

STACK_COLORS = ["#2f6fde", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def kpi_specs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Total Spend, Total Revenue and ROAS with their change against the previous period."""
    t, ch = data["totals"], data["change"]
    days = (date.fromisoformat(data["end_date"]) - date.fromisoformat(data["start_date"])).days + 1
    label = f"vs previous {days} days"
    return [
        {"title": "Total Spend", "value": money(t["spend"]), "delta": ch["spend"]["pct"], "delta_label": label,
         "higher_is_better": None, "key": "spend"},
        {"title": "Total Revenue", "value": money(t["revenue"]), "delta": ch["revenue"]["pct"], "delta_label": label,
         "key": "revenue"},
        {"title": "ROAS", "value": ratio(t["roas"]), "delta": ch["roas"]["pct"], "delta_label": label, "key": "roas"},
    ]


def channel_table(channels: list[dict[str, Any]]) -> pn.pane.HTML:
    """The channel mix: spend, share, platform revenue and platform ROAS."""
    rows = "".join(
        f"<tr><td>{html.escape(c['channel'])}</td><td class='num'>{money(c['spend'])}</td>"
        f"<td class='num'>{share(c['share_of_spend'])}</td><td class='num'>{money(c['platform_revenue'])}</td>"
        f"<td class='num'>{ratio(c['platform_roas'])}</td></tr>" for c in channels)
    head = ("<tr><th>Channel</th><th class='num'>Spend</th><th class='num'>Share</th>"
            "<th class='num'>Platform revenue</th><th class='num'>Platform ROAS</th></tr>")
    return pn.pane.HTML(f"<table class='gl-table gl-channel-table'>{head}{rows}</table>", stylesheets=[PAGE_CSS],
                        sizing_mode="stretch_width")


def insights_pane(items: list[dict[str, Any]]) -> pn.pane.HTML:
    """Quick insights as a list; each item's ``kind`` sets its marker."""
    if not items:
        return pn.pane.HTML("<div class='gl-note'>Not enough data in this range for insights.</div>",
                            stylesheets=[PAGE_CSS])
    body = "".join(
        f"<div class='gl-insight {html.escape(str(i.get('kind', 'info')))}'><b>{html.escape(i['title'])}:</b> "
        f"{html.escape(i['text'])}</div>" for i in items)
    return pn.pane.HTML(f"<div class='gl-insights'>{body}</div>", stylesheets=[PAGE_CSS],
                        sizing_mode="stretch_width")


def stacked_area(series: dict[str, Any], metric: str) -> pn.viewable.Viewable:
    """Spend or platform revenue by channel over time, stacked (hvplot on Bokeh)."""
    import hvplot.pandas  # noqa: F401  (imported late: keeps the first paint light)
    from bokeh.models import NumeralTickFormatter

    values = series[metric]
    df = pd.DataFrame({ch: [v or 0.0 for v in vals] for ch, vals in values.items()})
    df.insert(0, "date", pd.to_datetime(series["dates"]))
    df.columns.name = "Channel"
    label = "Spend" if metric == "spend" else "Platform revenue"
    plot = df.hvplot.area(
        x="date", y=list(values), stacked=True, group_label="Channel", height=340, responsive=True, legend="top_left",
        ylabel=f"{label} per {series['granularity']}", xlabel="", color=STACK_COLORS[: len(values)],
        yformatter=NumeralTickFormatter(format="$0.[0]a"), line_width=0, alpha=0.85,
    ).opts(tools=["hover"])
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=340, linked_axes=False)


class OverviewPage:
    """The Overview screen for one session; re-queries the API when the date range changes."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.status = pn.Column(sizing_mode="stretch_width")
        self.data: dict[str, Any] | None = None
        self.range: DateRange | None = None
        try:
            self.data = client.get("/api/metrics/overview")
        except ApiError as e:
            self.status.objects = [error_alert(e, "the overview")]
            self.layout = pn.Column(self.status, sizing_mode="stretch_width")
            return
        # first paint: the KPI cards only (few, light elements); everything else is built once they are shown
        self.kpis = kpi_strip(kpi_specs(self.data))
        self.controls = pn.Row(sizing_mode="stretch_width", min_height=62)
        self.body = pn.Column(loading("Loading chart…", height=340), sizing_mode="stretch_width")
        self.layout = pn.Column(self.controls, self.status, self.kpis, self.body, sizing_mode="stretch_width")
        pn.state.onload(self._load_deferred)

    def _build_rest(self) -> None:
        assert self.data is not None
        self.chart = pn.Column(sizing_mode="stretch_width", min_height=340)
        self.table = pn.Column(sizing_mode="stretch_width")
        self.insights = pn.Column(sizing_mode="stretch_width")
        self.model_insights = pn.Column(sizing_mode="stretch_width")
        self.metric = pn.widgets.RadioButtonGroup(options={"Spend": "spend", "Revenue": "revenue"}, value="spend",
                                                  color="light", label="Chart")
        self.range = DateRange(date.fromisoformat(self.data["data_start"]), date.fromisoformat(self.data["data_end"]))
        self.range.param.watch(self._on_range, "value")
        self.metric.param.watch(lambda _e: self._render_chart(), "value")

    def _render_numbers(self) -> None:
        assert self.data is not None
        self.kpis.object = kpi_strip_html(kpi_specs(self.data))
        self.table.objects = [channel_table(self.data["channels"])]
        self.insights.objects = [insights_pane(self.data["insights"])]

    def _render_chart(self) -> None:
        if self.data is None:
            return
        try:
            self.chart.objects = [stacked_area(self.data["series"], self.metric.value)]
        except Exception as e:  # a chart failure must not hide the numbers
            self.chart.objects = [error_alert(e, "the chart")]

    def _load_deferred(self) -> None:
        """After first paint: controls, chart, insights, channel mix, and the model's insights when a model exists."""
        self._build_rest()
        self.controls.objects = [self.range]
        self._render_numbers()
        self._render_chart()
        self.body.objects = [
            pn.Row(section_title("Performance by channel"), pn.layout.HSpacer(), self.metric,
                   sizing_mode="stretch_width"),
            self.chart,
            pn.Row(pn.Column(section_title("Quick insights"), self.insights, self.model_insights,
                             sizing_mode="stretch_width"),
                   pn.Column(section_title("Channel mix"), self.table, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
        ]
        try:
            found = self.client.get_optional("/api/insights")
        except ApiError:
            found = None
        items = [{**i, "kind": "model"} for i in (found or {}).get("insights", [])]
        if items:
            self.model_insights.objects = [pn.pane.Markdown("**From the marketing mix model**", margin=(5, 10)),
                                           insights_pane(items)]

    async def _on_range(self, event: Any) -> None:
        """New range: show progress at once, query the API off the event loop, keep only the latest answer."""
        assert self.range is not None
        self._seq = getattr(self, "_seq", 0) + 1
        seq = self._seq
        self.status.objects = [loading("Updating…", height=40)]
        try:
            data = await asyncio.to_thread(self.client.get, "/api/metrics/overview", **self.range.params)
        except ApiError as e:
            if seq == self._seq:
                self.status.objects = [error_alert(e, "the overview")]
            return
        if seq != self._seq:
            return
        self.data = data
        self.status.objects = []
        self._render_numbers()
        self._render_chart()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout


def page(client: ApiClient) -> pn.viewable.Viewable:
    """Build the Overview page for one session."""
    return OverviewPage(client).layout
