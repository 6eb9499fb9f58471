"""The pieces of the Customer Insights page that only present the API's numbers (no widgets, no requests).

Customer health (an SVG donut and a table per band), the figures of one opportunity and the display of its
assumptions, segment performance (chart and table) and the cards of the segments found by clustering. The churn
model cards are in :mod:`dashboard.insight_models`. Every figure comes from ``GET /api/customers/insights``.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
import panel as pn

from dashboard.components import HEALTH_COLORS, HEALTH_LABELS, TABLE_CSS
from dashboard.format import DASH, money, money_range, number, share
from dashboard.segment_values import Catalogue
from dashboard.segment_words import WORDS_CSS, rule_html

__all__ = ["BAND_COLORS", "BAND_LABELS", "INSIGHTS_CSS", "band_rule", "donut_svg", "health_html", "assumption_spec",
           "to_api_value", "opportunity_html", "performance_frame", "performance_chart", "performance_table",
           "trait_words", "discovered_html", "fit_words"]

GREEN, BLUE, GREY = HEALTH_COLORS["healthy"], "#2f6fde", "#5f6b7a"
BAND_COLORS, BAND_LABELS = HEALTH_COLORS, HEALTH_LABELS

INSIGHTS_CSS = TABLE_CSS + WORDS_CSS + """
.gl-health {display: flex; gap: 28px; align-items: center; flex-wrap: wrap; margin: 0 5px;}
.gl-health-donut {flex: 0 0 auto;}
.gl-health-table {flex: 1 1 520px;}
.gl-band-dot {display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 7px;
              vertical-align: baseline;}
.gl-band-name {font-weight: 650;}
.gl-band-rule {color: #5f6b7a; font-size: 13px;}
.gl-sub {color: #5f6b7a; font-size: 12px;}
.gl-opp-head {display: flex; align-items: baseline; gap: 10px;}
.gl-opp-rank {font-size: 13px; font-weight: 650; color: #fff; background: #2f6fde; border-radius: 10px;
              padding: 1px 8px;}
.gl-opp-title {font-size: 18px; font-weight: 650; color: #1d2733;}
.gl-opp-desc {color: #3d4753; font-size: 14px; margin: 4px 0 8px 0; line-height: 1.4;}
.gl-opp-figures {display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap;}
.gl-opp-dollars {font-size: 28px; font-weight: 650; color: #1a7f37;}
.gl-opp-range, .gl-opp-customers {color: #5f6b7a; font-size: 14px;}
.gl-stale {opacity: .45;}
.gl-error {color: #c62828; background: #fdecea; border-radius: 8px; padding: 6px 10px; font-size: 14px;}
.gl-updating {color: #5f6b7a; font-size: 13px;}
.gl-saved {color: #1a7f37; font-size: 14px;}
.gl-saved a, .gl-table a {color: #2f6fde; text-decoration: none; font-weight: 600;}
.gl-disc-name {font-size: 17px; font-weight: 650; color: #1d2733;}
.gl-disc-figures {display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 8px;
                  margin: 8px 0;}
.gl-disc-figures .v {font-size: 18px; font-weight: 650; color: #1d2733;}
.gl-disc-figures .t {font-size: 12px; color: #5f6b7a; text-transform: uppercase; letter-spacing: .03em;}
.gl-traits {margin: 4px 0 6px 0; padding-left: 18px; font-size: 14px;}
.gl-trait-up {color: #1a7f37;} .gl-trait-down {color: #c62828;}
.gl-fit {color: #5f6b7a; font-size: 13px; margin-top: 4px;}
"""


# --- customer health ---------------------------------------------------------------------------------------------
def band_rule(band: str, thresholds: dict[str, Any]) -> str:
    """The churn-risk range of a band in words, from the API's thresholds: ``churn risk ≥ 60%``."""
    warning, critical = thresholds.get("warning"), thresholds.get("critical")
    if band == "healthy":
        return f"churn risk below {share(warning)}"
    if band == "warning":
        return f"churn risk {share(warning)} to {share(critical)}"
    if band == "critical":
        return f"churn risk ≥ {share(critical)}"
    return ""


def _label(band: str) -> str:
    return BAND_LABELS.get(band, band.replace("_", " ").capitalize())


def donut_svg(bands: list[dict[str, Any]], centre: str = "", caption: str = "customers", size: int = 210) -> str:
    """A donut of the bands' customer counts (green / amber / red), each arc with a tooltip."""
    total = sum(float(b.get("customers") or 0) for b in bands)
    arcs, done = [], 0.0
    for b in bands:
        n = float(b.get("customers") or 0)
        part = 100.0 * n / total if total else 0.0
        colour = BAND_COLORS.get(b["band"], GREY)
        tip = f"{_label(b['band'])}: {number(n)} customers ({share(b.get('share'))})"
        arcs.append(f'<circle class="gl-donut-{html.escape(b["band"])}" cx="21" cy="21" r="15.9155" fill="none" '
                    f'stroke="{colour}" stroke-width="6" stroke-dasharray="{part:.3f} {100 - part:.3f}" '
                    f'stroke-dashoffset="{25 - done:.3f}"><title>{html.escape(tip)}</title></circle>')
        done += part
    return (f'<svg class="gl-health-donut" viewBox="0 0 42 42" width="{size}" height="{size}" role="img" '
            f'aria-label="Customer health">'
            '<circle cx="21" cy="21" r="15.9155" fill="none" stroke="#eef1f4" stroke-width="6"></circle>'
            f'{"".join(arcs)}'
            f'<text x="21" y="21" text-anchor="middle" font-size="5.5" font-weight="650" fill="#1d2733">'
            f'{html.escape(centre)}</text>'
            f'<text x="21" y="25.5" text-anchor="middle" font-size="2.8" fill="#5f6b7a">{html.escape(caption)}</text>'
            "</svg>")


def health_html(health: dict[str, Any]) -> str:
    """The donut beside one row per band: who is in it, how many, their share and the revenue at stake."""
    bands = health.get("bands") or []
    if not bands:
        return '<div class="gl-note">No customer has a churn prediction yet.</div>'
    thresholds = health.get("thresholds") or {}
    scored = health.get("scored")
    rows = []
    for b in bands:
        band = b["band"]
        rows.append(
            f'<tr class="gl-band gl-band-{html.escape(band)}"><td><span class="gl-band-dot" style="background:'
            f'{BAND_COLORS.get(band, GREY)}"></span><span class="gl-band-name">{html.escape(_label(band))}</span>'
            f'<div class="gl-band-rule">{html.escape(band)}: {html.escape(band_rule(band, thresholds))}</div></td>'
            f'<td class="num gl-band-customers">{number(b.get("customers"))}</td>'
            f'<td class="num gl-band-share">{share(b.get("share"))}</td>'
            f'<td class="num">{share(b.get("avg_churn_risk"))}</td>'
            f'<td class="num gl-band-stake">{money(b.get("revenue_at_stake"))}'
            f'<div class="gl-sub">{money_range(b.get("revenue_at_stake_low"), b.get("revenue_at_stake_high"))}'
            f'</div></td><td class="num">{money(b.get("predicted_ltv", b.get("predicted_value")))}</td></tr>')
    level = f"{share(health['level'])} range" if health.get("level") else "likely range"
    head = ("<tr><th>Health</th><th class='num'>Customers</th><th class='num'>Share</th>"
            f"<th class='num'>Avg churn risk</th><th class='num'>Revenue at stake<div class='gl-sub'>{level}"
            "</div></th><th class='num'>Predicted 12-month value</th></tr>")
    table = f"<table class='gl-table gl-health-bands'>{head}{''.join(rows)}</table>"
    donut = donut_svg(bands, centre=number(scored) if scored is not None else "", caption="customers scored")
    return f'<div class="gl-health">{donut}<div class="gl-health-table">{table}</div></div>'


# --- opportunities -----------------------------------------------------------------------------------------------
def _clean(x: float) -> float:
    """Drop binary noise: 14.999999999 → 15.0."""
    return float(f"{x:.10g}")


def assumption_spec(a: dict[str, Any]) -> dict[str, Any]:
    """How to show one assumption in a number input, in the units of its ``unit``: ``%`` in percent points (the
    API's values already are when ``max`` is above 1, e.g. 25 of 0-100; a fraction of 0-1 is shown ×100), ``$`` in
    dollars, anything else as a plain number with the unit in the label; bounds from the API's ``min``/``max``."""
    unit = a.get("unit") or ""
    fraction = unit == "%" and a.get("max") is not None and float(a["max"]) <= 1
    scale = 100.0 if fraction else 1.0
    label = a.get("label") or a["name"].replace("_", " ").capitalize()

    def shown(v: Any) -> float | None:
        return None if v is None else _clean(float(v) * scale)

    lo, hi = shown(a.get("min")), shown(a.get("max"))
    if unit in ("%", "$") or lo is None or hi is None or hi - lo > 1:
        step = 1.0
    else:
        step = 0.01
    return {"name": a["name"], "label": f"{label} ({unit})" if unit else label, "unit": unit, "scale": scale,
            "value": shown(a.get("value")), "start": lo, "end": hi, "step": step}


def to_api_value(shown: float, spec: dict[str, Any]) -> float:
    """A number typed in the input back in the API's units (25 % → 0.25)."""
    return _clean(float(shown) / spec["scale"])


def opportunity_html(opp: dict[str, Any], rank: int, stale: bool = False) -> str:
    """Rank, title, description and the dollars with their range and the customers concerned."""
    n = opp.get("customers")
    who = f"{number(n)} customer{'' if n == 1 else 's'}" if n is not None else ""
    rng = money_range(opp.get("low"), opp.get("high"))
    basis = (f'<div class="gl-sub gl-opp-basis">Range: {html.escape(opp["range_basis"])}.</div>'
             if opp.get("range_basis") else "")
    return (f'<div class="gl-opp-head"><span class="gl-opp-rank">#{rank}</span><span class="gl-opp-title">'
            f'{html.escape(opp.get("title") or opp["id"])}</span></div>'
            f'<div class="gl-opp-desc">{html.escape(opp.get("description") or "")}</div>'
            f'<div class="gl-opp-figures{" gl-stale" if stale else ""}">'
            f'<span class="gl-opp-dollars">{money(opp.get("dollars"))}</span>'
            f'<span class="gl-opp-range">{"likely " + rng if rng != DASH else ""}</span>'
            f'<span class="gl-opp-customers">{who}</span></div>{basis}')


# --- segment performance -----------------------------------------------------------------------------------------
def performance_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per segment: average lifetime value ($) and 90-day retention (%), in the API's order."""
    data = [{"Segment": r.get("name") or r.get("id"),
             "Avg lifetime value": float(r["avg_ltv"]) if r.get("avg_ltv") is not None else math.nan,
             "90-day retention": 100 * float(r["retention_90d"]) if r.get("retention_90d") is not None else math.nan,
             "Customers": int(r.get("customers") or 0)} for r in rows]
    return pd.DataFrame(data, columns=["Segment", "Avg lifetime value", "90-day retention", "Customers"])


def performance_chart(rows: list[dict[str, Any]]) -> pn.viewable.Viewable:
    """Average lifetime value and 90-day retention by segment, as two bar charts side by side."""
    import hvplot.pandas  # noqa: F401  (late import: numbers first, charts after)

    df = performance_frame(rows).iloc[::-1]  # the first segment on top
    height = max(220, 34 * len(df) + 80)
    common = {"x": "Segment", "invert": True, "height": height, "responsive": True, "xlabel": "",
              "hover_cols": ["Customers"]}
    ltv = df.hvplot.bar(y="Avg lifetime value", color=BLUE, ylabel="average lifetime value ($)",
                        title="Average lifetime value", **common)
    retention = df.hvplot.bar(y="90-day retention", color=GREEN, ylabel="retained after 90 days (%)",
                              title="90-day retention", **common)
    plot = (ltv + retention).opts(shared_axes=False)
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=height, linked_axes=False)


def performance_table(rows: list[dict[str, Any]], href: Any) -> str:
    """The same figures as a table; each segment links to its page (``href(id)``)."""
    if not rows:
        return '<div class="gl-note">No segment has been computed yet.</div>'
    body = "".join(
        f'<tr class="gl-perf-row"><td><a href="{href(str(r["id"]))}">{html.escape(str(r.get("name") or r["id"]))}'
        f'</a></td><td class="num">{number(r.get("customers"))}</td><td class="num">{money(r.get("avg_ltv"))}</td>'
        f'<td class="num">{share(r.get("retention_90d"))}</td><td class="num">{share(r.get("avg_churn_risk"))}</td>'
        "</tr>" for r in rows)
    head = ("<tr><th>Segment</th><th class='num'>Customers</th><th class='num'>Avg lifetime value</th>"
            "<th class='num'>90-day retention</th><th class='num'>Avg churn risk</th></tr>")
    return f"<table class='gl-table gl-perf'>{head}{body}</table>"


# --- discovered segments -----------------------------------------------------------------------------------------
def _value(v: Any, unit: str | None) -> str:
    if v is None:
        return DASH
    if unit == "$":
        return money(v)
    if unit == "%":
        return share(v)
    text = f"{float(v):,.1f}".removesuffix(".0")
    if unit and text == "1" and unit.endswith("s"):
        unit = unit[:-1]
    return f"{text} {unit}" if unit else text


def trait_words(t: dict[str, Any], cat: Catalogue | None = None) -> str:
    """One distinguishing trait: ``Support tickets 3.1 vs 0.4 overall`` with an arrow up or down. Churn risk and
    yes/no traits (an active subscription, never ordered: the API gives their share) read as percentages."""
    field = (cat.fields.get(t.get("field"), {}) if cat else {}) or {}
    unit = t.get("unit", field.get("unit"))
    label = t.get("label") or field.get("label") or str(t.get("field"))
    z = t.get("z")
    value, overall = t.get("value"), t.get("overall")
    up = z > 0 if z is not None else (value or 0) >= (overall or 0)
    arrow = f'<span class="{"gl-trait-up" if up else "gl-trait-down"}">{"▲" if up else "▼"}</span>'
    if isinstance(value, str) or isinstance(overall, str):
        return f"{arrow} {html.escape(label)}: <b>{html.escape(str(value))}</b>"
    flag = field.get("type") == "boolean" or (not field and all(
        isinstance(v, int | float) and 0 <= v <= 1 for v in (value, overall)))
    if flag or t.get("field") == "churn_risk":
        unit = "%"
    return (f"{arrow} {html.escape(label)} <b>{_value(value, unit)}</b> "
            f'<span class="gl-sub">vs {_value(overall, unit)} overall</span>')


def fit_words(seg: dict[str, Any]) -> str:
    """How well the saved rule matches the group found by clustering, in plain words."""
    p, r = seg.get("precision"), seg.get("recall")
    if p is None and r is None:
        return ""
    return (f"The rule below describes this group: {share(p)} of the customers it selects are in the group "
            f"(precision) and it finds {share(r)} of the group (recall).")


def discovered_html(seg: dict[str, Any], cat: Catalogue | None = None) -> str:
    """A discovered segment: name, size and share, value and churn risk, traits, its rule and how well it fits."""
    size = seg.get("size")
    figures = [("Customers", number(size)), ("Share", share(seg.get("share"))),
               ("Avg lifetime value", money(seg.get("avg_ltv"))), ("Avg churn risk", share(seg.get("avg_churn_risk")))]
    if seg.get("avg_predicted_ltv") is not None:
        figures.append(("Predicted 12-month value", money(seg.get("avg_predicted_ltv"))))
    cells = "".join(f'<div><div class="t">{t}</div><div class="v">{v}</div></div>' for t, v in figures)
    traits = "".join(f"<li>{trait_words(t, cat)}</li>" for t in seg.get("traits") or [])
    rule = seg.get("rule")
    rule_part = ""
    if rule:
        words = rule_html(rule, cat or Catalogue.from_api({}))
        rule_part = f'<div class="gl-fit gl-disc-fit">{html.escape(fit_words(seg))}</div>{words}'
    return (f'<div class="gl-disc-name">{html.escape(seg.get("name") or "Group")}</div>'
            f'<div class="gl-disc-figures">{cells}</div>'
            f'<div class="gl-note">What sets them apart:</div><ul class="gl-traits">{traits}</ul>{rule_part}')
