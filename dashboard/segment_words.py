"""A segment rule in plain business words: "Lifetime value greater than $500", "did Order at least twice in the
last 30 days", nested groups as "any of these:" lists. Shown on the segment page instead of the rule JSON.
"""

from __future__ import annotations

import html
from typing import Any

from dashboard.format import day
from dashboard.segment_values import Catalogue

__all__ = ["rule_html", "node_words", "value_words", "amount", "sparkline_svg", "WORDS_CSS"]

WORDS_CSS = """
.gl-seg-rule {font-size: 15px; line-height: 1.5; color: #1d2733;}
.gl-seg-rule ul {margin: 2px 0 4px 0; padding-left: 22px;}
.gl-seg-rule .gl-seg-mode-word {font-weight: 650; color: #2f6fde; text-transform: uppercase; font-size: 13px;}
"""

_COUNT_WORDS = {"gte": "at least", "lte": "at most", "eq": "exactly"}
_MODE_WORDS = {"all": "ALL", "any": "ANY", "none": "NONE"}


def amount(v: Any, unit: str | None = None) -> str:
    """An exact number with its unit: ``$1,250``, ``$19.50``, ``60 days``, ``1 order``, ``45%``."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return html.escape(str(v))
    text = f"{v:,.2f}".removesuffix(".00") if isinstance(v, float) else f"{v:,}"
    if unit == "$":
        return f"${text}"
    if unit == "%":
        return f"{text}%"
    if unit:
        return f"{text} {unit[:-1] if v == 1 and unit.endswith('s') else unit}"
    return text


def _either(values: list[Any], fmt: Any) -> str:
    parts = [fmt(v) for v in values]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def value_words(ftype: str, op: str, value: Any, unit: str | None = None) -> str:
    """A condition's value in words, fitting the field's type and the operator."""
    if op in ("is_set", "is_not_set"):
        return ""
    if ftype == "date":
        if op in ("within_last", "more_than_ago"):
            return amount(value, "days")
        if op == "between" and isinstance(value, list) and len(value) == 2:
            return f"{day(value[0])} and {day(value[1])}"
        return day(value)
    if ftype == "boolean":
        return "yes" if value else "no"
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"{amount(value[0], unit)} and {amount(value[1], unit)}"
    if isinstance(value, list):
        return _either(value, lambda v: amount(v, unit) if not isinstance(v, str) else f"<b>{html.escape(v)}</b>")
    if isinstance(value, str):
        return f"<b>{html.escape(value)}</b>"
    return amount(value, unit)


def _times(n: Any) -> str:
    if n == 1:
        return "once"
    if n == 2:
        return "twice"
    return f"{html.escape(str(n))} times"


def _behaviour(node: dict[str, Any], cat: Catalogue) -> str:
    event = cat.events.get(node.get("event"), {})
    label = html.escape(event.get("label") or str(node.get("event")))
    count = node.get("count") or {"op": "gte", "value": 1}
    text = f"<b>{label}</b> {_COUNT_WORDS.get(count.get('op'), count.get('op'))} {_times(count.get('value'))}"
    window = node.get("window") or {"ever": True}
    if "last_days" in window:
        text += f" in the last {amount(window['last_days'], 'days')}"
    elif "between" in window and isinstance(window["between"], list) and len(window["between"]) == 2:
        text += f" between {day(window['between'][0])} and {day(window['between'][1])}"
    else:
        text += " ever"
    where = node.get("where")
    if where:
        props = cat.properties(node.get("event") or "")
        plabel = (props.get(where.get("property")) or {}).get("label") or where.get("property")
        text += (f" where {html.escape(str(plabel)).lower()} {html.escape(cat.op_label(where.get('op', 'eq')))} "
                 f"{value_words('string', where.get('op', 'eq'), where.get('value'))}")
    return text if node.get("did", True) is not False else f"<b>Not</b> ({text})"


def node_words(node: dict[str, Any], cat: Catalogue) -> str:
    """One condition (trait, behaviour or segment membership) as an HTML phrase."""
    if "event" in node:
        return _behaviour(node, cat)
    if "segment" in node:
        name = html.escape(cat.segments.get(node["segment"], node["segment"]))
        return f"{'Not in' if node.get('op') == 'not_in' else 'In'} segment <b>{name}</b>"
    f = cat.fields.get(node.get("field"), {})
    label = html.escape(f.get("label") or str(node.get("field")))
    op = node.get("op", "")
    value = value_words(f.get("type", "string"), op, node.get("value"), f.get("unit"))
    if op == "more_than_ago":
        return f"{label} more than {value} ago"
    return f"{label} {html.escape(cat.op_label(op))}{' ' + value if value else ''}"


def _group(node: dict[str, Any]) -> tuple[str, list[Any]] | None:
    if "all" in node:
        return "all", node["all"]
    if "any" in node:
        return "any", node["any"]
    if "not" in node:
        inner = node["not"]
        if isinstance(inner, dict) and set(inner) == {"any"}:
            return "none", inner["any"]
        return "none", [inner]
    return None


def _items(nodes: list[Any], cat: Catalogue) -> str:
    out = []
    for n in nodes:
        g = _group(n)
        if g is None:
            out.append(f"<li>{node_words(n, cat)}</li>")
        else:
            out.append(f"<li>matches <span class='gl-seg-mode-word'>{_MODE_WORDS[g[0]]}</span> of these:"
                       f"<ul>{_items(g[1], cat)}</ul></li>")
    return "".join(out)


def rule_html(rule: dict[str, Any], cat: Catalogue) -> str:
    """The whole rule as nested lists under "Customers who match ALL of these:"."""
    g = _group(rule) or ("all", [rule])
    mode, nodes = g
    if not nodes:
        who = {"all": "Every customer", "any": "No customer", "none": "Every customer"}[mode]
        return f"<div class='gl-seg-rule'>{who} (the rule has no conditions).</div>"
    return (f"<div class='gl-seg-rule'>Customers who match <span class='gl-seg-mode-word'>{_MODE_WORDS[mode]}</span>"
            f" of these:<ul>{_items(nodes, cat)}</ul></div>")


def sparkline_svg(values: list[float], width: int = 110, height: int = 26, color: str = "#2f6fde") -> str:
    """A tiny inline line chart of a series (a segment's size over time); empty for fewer than two points."""
    vals = [float(v) for v in values if v is not None]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = (width - 4) / (len(vals) - 1)
    pts = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}" for i, v in enumerate(vals))
    return (f'<svg class="gl-seg-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{pts}"/></svg>')
