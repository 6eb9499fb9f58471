"""Revenue forecast: daily revenue for the coming days with its 90% interval next to recent history, planned daily
spend per channel as inputs, and the backtest (MAPE of the last 8 weeks against a seasonal-naive forecast).
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the options backend)
import pandas as pd
import panel as pn
from bokeh.models import NumeralTickFormatter

from dashboard.client import ApiClient, ApiError
from dashboard.components import error_alert, kpi_card, note, section_title
from dashboard.format import money

TITLE = "Forecast"
SECTION = "Marketing"
ORDER = 50

BLUE, GREY, ORANGE = "#2f6fde", "#5f6b7a", "#f28e2b"
MONEY_TICKS = NumeralTickFormatter(format="$0a")


def forecast_chart(f: dict[str, Any]) -> hv.Overlay:
    """History (grey), forecast (blue) and its 90% band."""
    hist = pd.DataFrame({"date": pd.to_datetime(f["history"]["dates"]), "revenue": f["history"]["actual"]})
    fut = pd.DataFrame({"date": pd.to_datetime(f["dates"]), "mean": f["mean"], "low": f["low"], "high": f["high"]})
    band = hv.Area(fut, "date", ["low", "high"], label="90% interval").opts(color=BLUE, alpha=0.2, line_alpha=0)
    return (hv.Curve(hist, "date", "revenue", label="actual").opts(color=GREY)
            * band * hv.Curve(fut, "date", "mean", label="forecast").opts(color=BLUE)).opts(
        responsive=True, height=340, legend_position="top_left", ylabel="revenue per day", xlabel="",
        yformatter=MONEY_TICKS, show_grid=True, shared_axes=False)


def backtest_chart(bt: dict[str, Any]) -> hv.Overlay:
    """The backtest weeks: actual, the forecast made before them and the seasonal-naive forecast."""
    d = pd.DataFrame({"date": pd.to_datetime(bt["dates"]), "actual": bt["actual"], "forecast": bt["forecast"],
                      "naive": bt["naive_forecast"]})
    return (hv.Curve(d, "date", "actual", label="actual").opts(color=GREY)
            * hv.Curve(d, "date", "forecast", label=f"forecast (MAPE {bt['mape']:.1%})").opts(color=BLUE)
            * hv.Curve(d, "date", "naive", label=f"{bt['naive']} (MAPE {bt['naive_mape']:.1%})").opts(
                color=ORANGE, line_dash="dashed")).opts(responsive=True, height=260, legend_position="top_left",
                                                       ylabel="revenue per day", xlabel="", yformatter=MONEY_TICKS,
                                                       shared_axes=False)


class ForecastPage:
    """The forecast page of one browser session."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.days = pn.widgets.IntSlider(name="Days ahead", start=7, end=365, step=7, value=91, width=260)
        self.inputs: dict[str, pn.widgets.FloatInput] = {}
        self.inputs_box = pn.Row(sizing_mode="stretch_width")
        self.run = pn.widgets.Button(name="Update forecast", button_type="primary", width=160)
        self.cards = pn.Row(sizing_mode="stretch_width")
        self.chart = pn.pane.HoloViews(None, sizing_mode="stretch_width")
        self.backtest = pn.Column(sizing_mode="stretch_width")
        self.message = pn.Column(sizing_mode="stretch_width")
        self.run.on_click(lambda _: self.refresh())
        self.layout = pn.Column(
            note("Daily revenue ahead at the planned daily spend per channel (default: the current run rate), "
                 "with holidays and seasonality; the band is the 90% interval."),
            self.message, pn.Row(self.days, self.run), section_title("Planned daily spend"), self.inputs_box,
            self.cards, self.chart, section_title("Backtest: the last 8 weeks forecast from the data before them"),
            self.backtest, sizing_mode="stretch_width",
        )
        self.refresh(first=True)

    def refresh(self, first: bool = False) -> None:
        """Ask the API for the forecast at the planned spend and show it."""
        self.message.objects = []
        try:
            if first:
                f = self.client.get("/api/forecast", days=int(self.days.value))
            else:
                spend = {n: float(w.value) for n, w in self.inputs.items() if w.value is not None}
                f = self.client.post("/api/forecast", json={"days": int(self.days.value), "spend": spend})
        except ApiError as e:
            self.message.objects = [error_alert(e, "the forecast")]
            return
        if first:
            self.inputs = {n: pn.widgets.FloatInput(name=n, value=round(float(v), 2), start=0, step=100, width=150)
                           for n, v in f["spend"].items()}
            self.inputs_box.objects = list(self.inputs.values())
        total = sum(f["mean"])
        low, high = sum(f["low"]), sum(f["high"])  # a band for the sum would be narrower: shown per day below
        self.cards.objects = [
            kpi_card(f"Revenue, next {len(f['dates'])} days", money(total), key="fc-total"),
            kpi_card("Per day on average", money(total / max(len(f["dates"]), 1)), key="fc-daily"),
            kpi_card("Planned spend per day", money(f["spend_per_day"]), key="fc-spend"),
            note(f"Daily 90% intervals add up to {money(low)}–{money(high)}; events ahead: "
                 + (", ".join(sorted({e['name'] for e in f['events']})) or "none")),
        ]
        self.chart.object = forecast_chart(f)
        bt = f.get("backtest") or {}
        if bt.get("mape") is None:
            self.backtest.objects = [note(bt.get("error") or "No backtest available.")]
            return
        self.backtest.objects = [
            pn.Row(kpi_card("Forecast MAPE", f"{bt['mape']:.1%}", key="fc-mape"),
                   kpi_card("Seasonal-naive MAPE", f"{bt['naive_mape']:.1%}", key="fc-naive-mape"),
                   sizing_mode="stretch_width"),
            note(f"{bt['start']} to {bt['end']}; naive = {bt['naive']}; {bt['coverage']:.0%} of days fell inside "
                 "the 90% interval."),
            pn.pane.HoloViews(backtest_chart(bt), sizing_mode="stretch_width"),
        ]


def page(client: ApiClient) -> pn.viewable.Viewable:
    """Build the forecast page for one session."""
    try:
        return ForecastPage(client).layout
    except (ApiError, KeyError, TypeError) as e:
        return pn.Column(error_alert(e, "the forecast"))
