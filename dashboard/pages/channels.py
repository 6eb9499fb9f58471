"""Channel deep dive: one channel's spend and revenue over time, platform metrics, best weekdays and months, and —
once a marketing mix model has been fitted — its response curve, current against optimal daily spend, incremental
ROAS beside platform ROAS, seasonality, how well the data identify it (and what to do about it), its lift tests
(measured, and the one to run next), and the revenue decomposition.
"""

from __future__ import annotations

import asyncio
import html
from datetime import date
from typing import Any
from urllib.parse import quote

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
    note,
    section_title,
)
from dashboard.format import day, money, pct, ratio, share

TITLE = "Channels"
SECTION = "Marketing"
ORDER = 20

PAGE_CSS = TABLE_CSS + """
.gl-table tr.top td {font-weight: 600;}
.gl-health-status {font-weight: 700; padding: 2px 8px; border-radius: 10px; background: #eef1f4;}
.gl-status-identified {color: #1a7f37; background: #e6f4ea;} .gl-status-weak {color: #9a6700; background: #fff4d6;}
.gl-status-unidentified {color: #c62828; background: #fdecea;}
.gl-health-actions li, .gl-lift-recommended {margin: 4px 0;}
"""
STATUS_WORDS = {"identified": "Identified", "weak": "Weakly identified", "unidentified": "Not identified",
                "unavailable": "Not assessed"}
BLUE, ORANGE, GREEN, GREY = "#2f6fde", "#f28e2b", "#1a7f37", "#5f6b7a"
STACK_COLORS = ["#b9c2cc", "#2f6fde", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]


def metric_cards(totals: dict[str, Any]) -> list[dict[str, Any]]:
    """Platform metrics of the range: spend, platform revenue, ROAS, CPC, CPA and conversion rate."""
    cvr = totals["conversion_rate"]
    return [
        {"title": "Spend", "value": money(totals["spend"]), "key": "ch-spend",
         "sub": f"{money(totals['avg_daily_spend'])}/day"},
        {"title": "Platform revenue", "value": money(totals["platform_revenue"]), "key": "ch-revenue"},
        {"title": "Platform ROAS", "value": ratio(totals["platform_roas"]), "key": "ch-roas"},
        {"title": "CPC", "value": money(totals["cpc"]), "key": "ch-cpc"},
        {"title": "CPA", "value": money(totals["cpa"]), "key": "ch-cpa"},
        {"title": "Conversion rate", "value": share(cvr) if (cvr or 0) >= 0.1 else pct(cvr, signed=False),
         "key": "ch-cvr"},
    ]


def ranking_table(rows: list[dict[str, Any]], what: str, top: int = 3) -> pn.pane.HTML:
    """Weekdays or months ranked: average daily spend and revenue, platform ROAS, revenue index."""
    body = "".join(
        f"<tr class='{'top' if r['rank'] <= top else ''}'><td>{r['rank']}. {html.escape(r['label'])}</td>"
        f"<td class='num'>{money(r['avg_daily_spend'])}</td><td class='num'>{money(r['avg_daily_revenue'])}</td>"
        f"<td class='num'>{ratio(r['platform_roas'])}</td><td class='num'>{_index(r['revenue_index'])}</td></tr>"
        for r in rows)
    head = (f"<tr><th>{what}</th><th class='num'>Spend/day</th><th class='num'>Revenue/day</th>"
            "<th class='num'>ROAS</th><th class='num'>Revenue index</th></tr>")
    return pn.pane.HTML(f"<table class='gl-table gl-rank-{what.lower()}'>{head}{body}</table>",
                        stylesheets=[PAGE_CSS], sizing_mode="stretch_width")


def _index(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def spend_revenue_chart(series: dict[str, Any], channel: str) -> pn.viewable.Viewable:
    """Spend and platform revenue per period."""
    import hvplot.pandas  # noqa: F401  (late import: numbers first, charts after)
    from bokeh.models import NumeralTickFormatter

    df = pd.DataFrame({"date": pd.to_datetime(series["dates"]), "Spend": series["spend"],
                       "Platform revenue": series["platform_revenue"]})
    plot = df.hvplot.line(
        x="date", y=["Spend", "Platform revenue"], color=[BLUE, ORANGE], height=300, responsive=True,
        group_label="Metric",
        ylabel=f"per {series['granularity']}", xlabel="", legend="top_left", line_width=2,
        yformatter=NumeralTickFormatter(format="$0.[0]a"), title=f"{channel}: spend vs platform revenue",
    ).opts(tools=["hover"])
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=300, linked_axes=False)


def model_cards(model: dict[str, Any], platform_roas: float | None) -> list[dict[str, Any]]:
    """Optimal against current daily spend, the opportunity, and incremental ROAS beside platform ROAS."""
    cur, opt = model.get("current_daily_spend"), model.get("optimal_daily_spend")
    cards = [{"title": "Current daily spend", "value": money(cur), "key": "current-spend",
              "sub": "mean of the last 4 weeks"},
             {"title": "Optimal daily spend", "value": money(opt), "key": "optimal-spend",
              "sub": f"90%: {_interval(model.get('optimal_daily_spend_interval'))}"}]
    if cur is not None and opt is not None:
        gap = opt - cur
        verb = "Increase" if gap > 0 else "Reduce"
        gain = model.get("opportunity_per_day")
        sub = f"{money(gain, signed=True)}/day revenue minus spend" if gain is not None else ""
        cards.append({"title": "Opportunity", "value": f"{verb} by {money(abs(gap))}/day", "key": "opportunity",
                      "sub": sub, "small": True})
    roas = model.get("roas") or {}
    interval = f"{ratio(roas.get('low'))}–{ratio(roas.get('high'))} (90%)" if roas else ""
    cards.append({"title": "Incremental ROAS", "value": ratio(roas.get("mean")), "sub": interval,
                  "key": "incremental-roas"})
    cards.append({"title": "Platform ROAS", "value": ratio(platform_roas), "sub": "as reported by the platform",
                  "key": "platform-roas"})
    return cards


def _row(label: str, value: str) -> str:
    return f"<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>"


def health_html(h: dict[str, Any], overall: dict[str, Any] | None, per: str) -> str:
    """The channel's identifiability in business words, what to do about it, and the model's own checks."""
    status = h.get("status", "unavailable")
    head = (f"<p>How well the data identify {html.escape(h['channel'])}: <span class='gl-health-status "
            f"gl-status-{status}'>{STATUS_WORDS.get(status, status)}</span></p>")
    if status == "unavailable":
        return head + "<p class='gl-note'>This model was fitted before health checks existed; refit it to see them.</p>"
    rows = []
    if h.get("max_corr") is not None:
        rows.append(_row("Spend moves most with", f"{h['max_corr_with']} (r = {h['max_corr']:.2f})"))
    if h.get("baseline_corr") is not None:
        rows.append(_row("Follows season, trend and events", f"r = {h['baseline_corr']:.2f}"))
    if h.get("vif") is not None:
        rows.append(_row("Explained by the rest of the model",
                         f"{share(1 - 1 / max(h['vif'], 1.0))} of its variation (variance inflation {h['vif']:.1f})"))
    if h.get("spend_cv") is not None:
        rows.append(_row("Spend variation", f"{share(h['spend_cv'])} around its average {per}"))
    if h.get("zero_share") is not None:
        rows.append(_row(f"{per.capitalize()}s without spend", share(h["zero_share"])))
    if h.get("roas_rel_width") is not None:
        rows.append(_row("ROAS uncertainty", f"±{share(h['roas_rel_width'] / 2)} of the estimate (90%)"))
    rows.append(_row("Calibrated by a lift test", "yes" if h.get("calibrated") else "no"))
    acts = h.get("actions") or []
    todo = ("<ul class='gl-health-actions'>" + "".join(f"<li>{html.escape(a)}</li>" for a in acts) + "</ul>"
            if acts else "<p class='gl-health-actions'>Nothing to do: the data separate this channel well.</p>")
    out = head + f"<table class='gl-table gl-health'>{''.join(rows)}</table>" + todo
    if overall and overall.get("status") != "unavailable":
        checks = [f"residual lag-1 autocorrelation {overall['residual_lag1']:.2f}"]
        if overall.get("holdout_ratio") is not None:
            verdict = "better than" if overall["holdout_ratio"] < 1 else "no better than"
            checks.append(f"over the last {overall['holdout_periods']} {per}s it forecast {verdict} "
                          f"{overall['naive']} (error {pct(overall['holdout_mape'], signed=False)} against "
                          f"{pct(overall['naive_mape'], signed=False)})")
        extra = "".join(f"<li>{html.escape(f['action'])}</li>" for f in overall.get("findings") or [])
        out += (f"<p class='gl-note gl-model-checks'>Model checks: {html.escape('; '.join(checks))}.</p>"
                + (f"<ul class='gl-health-actions'>{extra}</ul>" if extra else ""))
    return out


def lift_tests_html(channel: str, measured: list[dict[str, Any]], test: dict[str, Any] | None) -> str:
    """The channel's measured lift tests beside the model's prediction, and the test recommended next."""
    if measured:
        body = "".join(
            f"<tr><td>{day(t['start'])} – {day(t['end'])}</td><td class='num'>"
            f"{money(t['spend_change_per_day'], signed=True)}</td><td class='num'>{money(t['lift'], signed=True)}"
            f" ± {money(t['se'])}</td><td class='num'>{money(t['predicted'], signed=True)}</td></tr>"
            for t in measured)
        out = ("<table class='gl-table gl-lift-measured'><tr><th>Window</th><th class='num'>Spend change/day</th>"
               "<th class='num'>Measured lift</th><th class='num'>Model predicts</th></tr>" + body + "</table>")
    else:
        out = f"<p class='gl-note gl-lift-measured'>No lift test of {html.escape(channel)} has been measured yet.</p>"
    if test:
        out += (f"<div class='gl-lift-recommended'><b>Recommended test:</b> {html.escape(test['action'])}."
                f"<div class='gl-note'>{html.escape(test['reason'])}.</div></div>")
    else:
        out += "<p class='gl-note gl-lift-recommended'>No test is recommended: the model knows this channel well " \
               "enough, or it is too small a share of spend to be worth one.</p>"
    return out


def response_curve_chart(model: dict[str, Any], channel: str) -> pn.viewable.Viewable:
    """Daily spend → daily incremental revenue with its 90% band; current and optimal spend marked."""
    import holoviews as hv
    from bokeh.models import NumeralTickFormatter

    hv.extension("bokeh", logo=False)
    c = model["curve"]
    spend = c["spend"]
    elements = []
    if c.get("low") and c.get("high"):
        elements.append(hv.Area((spend, c["low"], c["high"]), kdims=["Daily spend"],
                                vdims=["low", "high"], label="90% interval").opts(color=BLUE, alpha=0.18,
                                                                                  line_width=0))
    elements.append(hv.Curve((spend, c["mean"]), "Daily spend", "Daily incremental revenue",
                             label="Expected revenue").opts(color=BLUE, line_width=2.5))
    break_even = [s * (model.get("target_roas") or 1.0) for s in spend]
    elements.append(hv.Curve((spend, break_even), "Daily spend", "Daily incremental revenue",
                             label="Break-even").opts(color=GREY, line_dash="dotted", line_width=1.5))
    top = max(c["high"] or c["mean"]) if c.get("high") else max(c["mean"])
    for value, colour, label, height in ((model.get("current_daily_spend"), ORANGE, "Current", 0.95),
                                         (model.get("optimal_daily_spend"), GREEN, "Optimal", 0.85)):
        if value is not None:
            elements.append(hv.VLine(value, label=label).opts(color=colour, line_width=2, line_dash="dashed"))
            elements.append(hv.Text(value, top * height, f" {label} {money(value)}/day",
                                    halign="left").opts(color=colour, text_font_size="11px"))
    fmt = NumeralTickFormatter(format="$0.[0]a")
    overlay = hv.Overlay(elements).opts(
        height=340, responsive=True, xlabel="Daily spend", ylabel="Daily incremental revenue",
        legend_position="top_left", title=f"{channel}: response curve",
        xformatter=fmt, yformatter=fmt, tools=["hover"], show_grid=True)
    return pn.pane.HoloViews(overlay, sizing_mode="stretch_width", min_height=340, linked_axes=False)


def seasonality_chart(model: dict[str, Any]) -> pn.viewable.Viewable | None:
    """The channel's monthly effectiveness index from the model (1.0 = average)."""
    import hvplot.pandas  # noqa: F401

    months = (model.get("seasonality") or {}).get("month")
    if not months:
        return None
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    df = pd.DataFrame({"Month": names, "Index": [months.get(str(i + 1), 1.0) for i in range(12)]})
    plot = df.hvplot.bar(x="Month", y="Index", height=260, responsive=True, color=BLUE, ylabel="effect (1.0 = avg)",
                         title="Seasonality of the channel's effect").opts(tools=["hover"])
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=260, linked_axes=False)


def decomposition_chart(dec: dict[str, Any]) -> pn.viewable.Viewable:
    """Revenue per period split into baseline and each channel's incremental contribution, with actual revenue."""
    import holoviews as hv
    from bokeh.models import NumeralTickFormatter

    hv.extension("bokeh", logo=False)
    dates = pd.to_datetime(dec["dates"])
    layers = {"Baseline": dec["baseline"], **dec["channels"]}
    areas = [hv.Area((dates, vals), "date", "revenue", label=name).opts(color=STACK_COLORS[i % len(STACK_COLORS)],
                                                                         line_width=0, alpha=0.85)
             for i, (name, vals) in enumerate(layers.items())]
    plot = hv.Area.stack(hv.Overlay(areas))
    if dec.get("actual"):
        plot = plot * hv.Curve((dates, dec["actual"]), "date", "revenue", label="Actual").opts(
            color="#1d2733", line_width=1.5)
    plot = plot.opts(
        title="Where revenue came from (model decomposition)", height=340, responsive=True, legend_position="top_left",
        yformatter=NumeralTickFormatter(format="$0.[0]a"), ylabel=f"revenue per {dec.get('granularity', 'week')}",
        xlabel="", tools=["hover"])
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=340, linked_axes=False)


class ChannelsPage:
    """The Channels screen for one session: re-queries the API when the channel or the range changes."""

    def __init__(self, client: ApiClient, channel: str | None = None) -> None:
        self.client = client
        self.status = pn.Column(sizing_mode="stretch_width")
        self.cards = kpi_strip([])
        self.chart = pn.Column(loading("Loading chart…", height=300), sizing_mode="stretch_width")
        self.rankings = pn.Row(sizing_mode="stretch_width")
        self.model = pn.Column(sizing_mode="stretch_width")
        self.decomposition = pn.Column(sizing_mode="stretch_width")
        self.perf: dict[str, Any] | None = None
        self._painted = False
        try:
            listing = client.get("/api/channels")
        except ApiError as e:
            self.layout = pn.Column(error_alert(e, "the channels"), sizing_mode="stretch_width")
            return
        names = [c["channel"] for c in listing["channels"]]
        if not names:
            self.layout = pn.Column(note("The data has no channels."))
            return
        if channel is None and pn.state.session_args:
            arg = pn.state.session_args.get("channel")
            channel = arg[0].decode() if arg else None
        self.select = pn.widgets.Select(label="Channel", options=names, value=channel if channel in names else names[0],
                                        width=220)
        self.range = DateRange(date.fromisoformat(listing["data_start"]), date.fromisoformat(listing["data_end"]))
        self._seq = 0
        self.select.param.watch(self._on_change, "value")
        self.range.param.watch(self._on_change, "value")
        self.layout = pn.Column(
            pn.Row(self.select, self.range, sizing_mode="stretch_width"),
            self.status,
            self.cards,
            self.chart,
            self.rankings,
            self.model,
            self.decomposition,
            sizing_mode="stretch_width",
        )
        self.refresh(charts=False)
        pn.state.onload(self._after_paint)

    def _after_paint(self) -> None:
        self._painted = True
        self._render_charts()

    def _fetch(self) -> dict[str, Any]:
        return self.client.get(f"/api/channels/{quote(self.select.value, safe='')}/performance", **self.range.params)

    def refresh(self, charts: bool = True) -> None:
        """Fetch the selected channel's performance and redraw."""
        try:
            perf = self._fetch()
        except ApiError as e:
            self.status.objects = [error_alert(e, self.select.value)]
            return
        self._apply(perf, charts)

    async def _on_change(self, _event: Any) -> None:
        """Channel or range changed: show progress at once, fetch off the event loop, keep only the latest answer."""
        self._seq += 1
        seq = self._seq
        self.status.objects = [loading(f"Loading {self.select.value}…", height=40)]
        try:
            perf = await asyncio.to_thread(self._fetch)
        except ApiError as e:
            if seq == self._seq:
                self.status.objects = [error_alert(e, self.select.value)]
            return
        if seq == self._seq:
            self._apply(perf, charts=True)

    def _apply(self, perf: dict[str, Any], charts: bool) -> None:
        self.perf = perf
        self.status.objects = []
        self.cards.object = kpi_strip_html(metric_cards(perf["totals"]))
        self.rankings.objects = [
            pn.Column(section_title("Best weekdays"), ranking_table(perf["best_weekdays"], "Weekday"),
                      sizing_mode="stretch_width"),
            pn.Column(section_title("Best months"), ranking_table(perf["best_months"], "Month"),
                      note(f"Months over all the data ({perf['months_range'][0]} to {perf['months_range'][1]})."),
                      sizing_mode="stretch_width"),
        ]
        if charts and self._painted:
            self._render_charts()

    def _render_charts(self) -> None:
        if self.perf is None:
            return
        perf, channel = self.perf, self.perf["channel"]
        try:
            self.chart.objects = [spend_revenue_chart(perf["series"], channel)]
        except Exception as e:  # a chart failure must not hide the numbers
            self.chart.objects = [error_alert(e, "the chart")]
        model = perf.get("model")
        if not model:
            self.model.objects = [section_title("Diminishing returns"),
                                  note("No marketing mix model has been fitted on the current data yet; the "
                                       "response curve, optimal spend and incremental ROAS appear here once it has.")]
            self.decomposition.objects = []
            return
        parts: list[pn.viewable.Viewable] = [section_title("Diminishing returns (marketing mix model)"),
                                             kpi_strip(model_cards(model, perf["totals"]["platform_roas"]))]
        try:
            if model.get("curve"):
                parts.append(response_curve_chart(model, channel))
            season = seasonality_chart(model)
            if season is not None:
                parts.append(season)
        except Exception as e:
            parts.append(error_alert(e, "the model charts"))
        mroas = model.get("marginal_roas")
        if mroas is not None:
            parts.append(note(f"Marginal ROAS at current spend: {ratio(mroas)} — each extra dollar per day returns "
                              f"about {money(mroas)} in incremental revenue."))
        if model.get("health"):
            per = model.get("model_granularity") or "day"
            parts += [section_title("Model health"),
                      pn.pane.HTML(health_html(model["health"], model.get("model_health"), per),
                                   stylesheets=[PAGE_CSS], sizing_mode="stretch_width"),
                      section_title("Lift tests"),
                      pn.pane.HTML(lift_tests_html(channel, model.get("lift_tests") or [],
                                                   model.get("recommended_test")),
                                   stylesheets=[PAGE_CSS], sizing_mode="stretch_width")]
        self.model.objects = parts
        if self.decomposition.objects:
            return  # the decomposition covers every channel: drawn once per page
        try:
            dec = self.client.get_optional("/api/contributions", granularity="week")
        except ApiError:
            dec = None
        if dec and dec.get("dates"):
            try:
                self.decomposition.objects = [decomposition_chart(dec)]
            except Exception as e:
                self.decomposition.objects = [error_alert(e, "the decomposition")]

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout


def _interval(iv: list[float] | None) -> str:
    return f"{money(iv[0])}–{money(iv[1])}/day" if iv and len(iv) == 2 else "not available"


def page(client: ApiClient) -> pn.viewable.Viewable:
    """Build the Channels page for one session (``?channel=`` preselects a channel)."""
    return ChannelsPage(client).layout

