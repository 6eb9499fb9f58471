"""Building blocks shared by the dashboard pages: KPI cards, loading and error states, the date-range picker."""

from __future__ import annotations

import html
from datetime import date, timedelta
from typing import Any

import panel as pn
import param

from dashboard.client import ApiError
from dashboard.format import pct

__all__ = ["KPI_CSS", "kpi_card", "kpi_strip", "kpi_strip_html", "kpi_row", "loading", "error_alert", "DateRange",
           "section_title", "note", "HEALTH_COLORS", "HEALTH_LABELS", "health_badge"]

KPI_CSS = """
.gl-kpi-strip {display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 14px;
              margin: 0 5px;}
.gl-kpi {border: 1px solid #e3e6ea; border-radius: 10px; padding: 12px 16px; min-width: 120px; background: #fff;}
.gl-kpi-title {font-size: 13px; color: #5f6b7a; text-transform: uppercase; letter-spacing: .04em;}
.gl-kpi-value {font-size: 30px; font-weight: 650; color: #1d2733; margin-top: 4px;}
.gl-kpi-value.gl-small {font-size: 21px; margin-top: 8px;}
.gl-kpi-delta {font-size: 13px; margin-top: 4px; color: #5f6b7a;}
.gl-kpi-delta.good {color: #1a7f37;} .gl-kpi-delta.bad {color: #c62828;}
.gl-insight {margin: 6px 0; line-height: 1.4;} .gl-insight b {color: #1d2733;}
.gl-note {color: #5f6b7a; font-size: 13px;}
"""

#: Shared table style (``<table class="gl-table">``, numbers in ``td.num``); pages append their own rules.
TABLE_CSS = KPI_CSS + """
.gl-table {border-collapse: collapse; width: 100%; font-size: 14px;}
.gl-table th {text-align: left; color: #5f6b7a; font-weight: 600; border-bottom: 1px solid #e3e6ea; padding: 6px 8px;}
.gl-table td {border-bottom: 1px solid #f0f2f4; padding: 6px 8px;}
.gl-table td.num, .gl-table th.num {text-align: right;}
"""


def _card_html(title: str, value: str, delta: float | None = None, *, delta_label: str = "vs previous period",
               higher_is_better: bool | None = True, key: str | None = None, sub: str | None = None,
               small: bool = False) -> str:
    delta_html = ""
    if delta is not None:
        cls = ""
        if higher_is_better is not None and delta != 0:
            cls = "good" if (delta > 0) == higher_is_better else "bad"
        delta_html = (f'<div class="gl-kpi-delta {cls}">{html.escape(pct(delta))} '
                      f'{html.escape(delta_label)}</div>')
    elif sub:
        delta_html = f'<div class="gl-kpi-delta">{html.escape(sub)}</div>'
    key_cls = f" gl-kpi-{key}" if key else ""
    return (f'<div class="gl-kpi{key_cls}"><div class="gl-kpi-title">{html.escape(title)}</div>'
            f'<div class="gl-kpi-value{" gl-small" if small else ""}">{html.escape(value)}</div>{delta_html}</div>')


def kpi_card(title: str, value: str, delta: float | None = None, *, delta_label: str = "vs previous period",
             higher_is_better: bool | None = True, key: str | None = None) -> pn.pane.HTML:
    """A KPI card: title, big formatted value and an optional change (a fraction, e.g. 0.12 → +12%), green when
    it is good news, red when bad, grey when ``higher_is_better`` is ``None`` (neither, e.g. spend).

    ``key`` becomes a CSS class ``gl-kpi-<key>`` so tests and users can find the card.
    """
    body = _card_html(title, value, delta, delta_label=delta_label, higher_is_better=higher_is_better, key=key)
    return pn.pane.HTML(body, stylesheets=[KPI_CSS], sizing_mode="stretch_width", margin=(5, 10))


def kpi_strip(cards: list[dict[str, Any]]) -> pn.pane.HTML:
    """Several KPI cards in one light element (one model for the browser to render: fastest first paint).

    Each dict holds ``kpi_card``'s arguments (``title``, ``value`` and optionally ``delta``, ``delta_label``,
    ``higher_is_better``, ``key``) or ``sub`` for a grey line under the value; ``small`` for long values.
    Update with :func:`kpi_strip_html`.
    """
    return pn.pane.HTML(kpi_strip_html(cards), stylesheets=[KPI_CSS], sizing_mode="stretch_width", margin=(5, 5))


def kpi_strip_html(cards: list[dict[str, Any]]) -> str:
    """The HTML of a :func:`kpi_strip` (assign it to the pane's ``object`` to update all cards at once)."""
    return '<div class="gl-kpi-strip">' + "".join(_card_html(**c) for c in cards) + "</div>"


def kpi_row(cards: list[pn.viewable.Viewable]) -> pn.Row:
    """Cards side by side, stretching to the page width."""
    return pn.Row(*cards, sizing_mode="stretch_width")


LOADING_CSS = """
.gl-loading {display: flex; align-items: center; gap: 10px; color: #5f6b7a; font-size: 13px; padding: 8px 10px;}
.gl-spinner {width: 18px; height: 18px; border: 3px solid #dbe4f3; border-top-color: #2f6fde; border-radius: 50%;
             animation: gl-spin .8s linear infinite;}
@keyframes gl-spin {to {transform: rotate(360deg);}}
"""


def loading(message: str = "Loading…", height: int = 120) -> pn.pane.HTML:
    """A spinner with a short message, shown while data is on its way (one light element, CSS-animated)."""
    return pn.pane.HTML(f'<div class="gl-loading"><div class="gl-spinner"></div><span>{html.escape(message)}</span>'
                        "</div>", stylesheets=[LOADING_CSS], height=height, sizing_mode="stretch_width")


def error_alert(err: Exception | str, what: str = "") -> pn.pane.Alert:
    """A readable error box; API errors show the API's own explanation."""
    msg = err.message if isinstance(err, ApiError) else str(err)
    prefix = f"Could not load {what}: " if what else ""
    return pn.pane.Alert(f"{prefix}{msg}", alert_type="danger", sizing_mode="stretch_width")


#: Customer health bands by churn risk, in the same colours on every page (green / amber / red).
HEALTH_COLORS = {"healthy": "#1a7f37", "warning": "#c98a00", "critical": "#c62828"}
HEALTH_LABELS = {"healthy": "Healthy", "warning": "Warning", "critical": "Critical"}


def health_badge(band: str | None, dot_only: bool = False) -> str:
    """A coloured dot and the band's name (only the dot, named in its tooltip, with ``dot_only``; ``""`` when there
    is no band)."""
    if not band:
        return ""
    colour = HEALTH_COLORS.get(band, "#5f6b7a")
    label = html.escape(HEALTH_LABELS.get(band, band.capitalize()))
    return (f'<span class="gl-health-badge gl-health-{html.escape(band)}" title="{label}" style="white-space: nowrap">'
            f'<span style="display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:5px;'
            f'background:{colour}"></span>{"" if dot_only else label}</span>')


def section_title(text: str) -> pn.pane.Markdown:
    """A sub-heading inside a page."""
    return pn.pane.Markdown(f"### {text}", margin=(10, 10, 0, 10))


def note(text: str) -> pn.pane.HTML:
    """Small grey explanatory text."""
    return pn.pane.HTML(f'<div class="gl-note">{html.escape(text)}</div>', stylesheets=[KPI_CSS],
                        sizing_mode="stretch_width")


PRESETS = {"Last 30 days": 30, "Last 90 days": 90, "Last 6 months": 182, "Last 12 months": 365, "All data": None}


class DateRange(param.Parameterized):
    """A date range chosen by preset ("Last 90 days", ...) or exactly with a picker, within the data's bounds.

    Pages watch ``value`` (a ``(start, end)`` tuple of dates) and re-query the API when it changes.
    """

    value = param.Tuple(default=None, length=2, allow_None=True, doc="(start, end) dates")

    def __init__(self, data_start: date, data_end: date, default: str = "Last 90 days", **params: Any) -> None:
        super().__init__(**params)
        self.data_start, self.data_end = data_start, data_end
        self.preset = pn.widgets.Select(label="Period", options=[*PRESETS, "Custom"], value=default, width=160)
        start, end = self._preset_range(default)
        self.picker = pn.widgets.DateRangePicker(label="Dates", start=data_start, end=data_end, value=(start, end),
                                                 width=260)
        self.value = (start, end)
        self._syncing = False
        self.preset.param.watch(self._on_preset, "value")
        self.picker.param.watch(self._on_picker, "value")

    def _preset_range(self, name: str) -> tuple[date, date]:
        days = PRESETS.get(name)
        if days is None:
            return self.data_start, self.data_end
        return max(self.data_start, self.data_end - timedelta(days=days - 1)), self.data_end

    def _on_preset(self, event: param.parameterized.Event) -> None:
        if self._syncing or event.new == "Custom":
            return
        rng = self._preset_range(event.new)
        self._syncing = True
        try:
            self.picker.value = rng
        finally:
            self._syncing = False
        self.value = rng

    def _on_picker(self, event: param.parameterized.Event) -> None:
        if self._syncing or not event.new or None in event.new:
            return
        self._syncing = True
        try:
            self.preset.value = "Custom"
        finally:
            self._syncing = False
        self.value = tuple(event.new)

    @property
    def params(self) -> dict[str, str]:
        """Query parameters for the API (``start_date``/``end_date`` as ISO strings)."""
        start, end = self.value
        return {"start_date": start.isoformat(), "end_date": end.isoformat()}

    def __panel__(self) -> pn.Row:
        return pn.Row(self.preset, self.picker)
