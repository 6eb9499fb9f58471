"""What a segment rule may say, and the widgets that take one condition's value.

:class:`Catalogue` wraps ``GET /api/segments/fields`` (fields with their operators, unit and known values; events
with their properties; operator names in plain words) plus the saved segments. :class:`ValueEditor` shows the value
widget fitting a field's type and operator (:func:`value_kind`): numbers with their unit ($ before, days/orders/%
after), a date picker, "N days", a select or multi-select of known values, text, two inputs for ``between``, nothing
for ``is_set``; its :attr:`~ValueEditor.value` is the JSON value, ``None`` while the user has not filled it in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import panel as pn

__all__ = ["Catalogue", "ValueEditor", "value_kind", "parse_number", "word", "BUILDER_CSS", "NUMERIC"]

NUMERIC = frozenset({"number", "integer", "money"})

BUILDER_CSS = """
.gl-seg-word {color: #5f6b7a; font-size: 14px; white-space: nowrap;}
.gl-seg-if {font-weight: 600; color: #1d2733; font-size: 15px; white-space: nowrap;}
.gl-seg-row-error {color: #c62828; font-size: 13px; margin-left: 12px;}
"""


@dataclass
class Catalogue:
    """What a rule may say: fields, events, operator words (``GET /api/segments/fields``) and saved segments."""

    fields: dict[str, dict[str, Any]]
    events: dict[str, dict[str, Any]]
    operators: dict[str, str]
    as_of: date | None = None
    segments: dict[str, str] = field(default_factory=dict)  # id → name

    @classmethod
    def from_api(cls, data: dict[str, Any], segments: list[dict[str, Any]] | None = None) -> Catalogue:
        """Build from the fields answer (and the segment list, for membership conditions and their names)."""
        as_of = data.get("as_of")
        return cls(fields={f["name"]: f for f in data.get("fields") or []},
                   events={e["name"]: e for e in data.get("events") or []},
                   operators=dict(data.get("operators") or {}),
                   as_of=date.fromisoformat(as_of[:10]) if as_of else None,
                   segments={s["id"]: s["name"] for s in segments or []})

    def op_label(self, op: str) -> str:
        """The operator in plain words (the API's wording, else the name with spaces)."""
        return self.operators.get(op) or op.replace("_", " ")

    def op_options(self, ops: list[str] | tuple[str, ...]) -> dict[str, str]:
        """Operators as ``{label: op}`` for a select."""
        return {self.op_label(o): o for o in ops}

    def field_groups(self) -> dict[str, dict[str, str]]:
        """Fields as ``{group: {label: name}}`` in catalogue order (a grouped select)."""
        out: dict[str, dict[str, str]] = {}
        for f in self.fields.values():
            out.setdefault(f.get("group") or "Other", {})[f.get("label") or f["name"]] = f["name"]
        return out

    def event_options(self) -> dict[str, str]:
        """Events as ``{label: name}``."""
        return {e.get("label") or e["name"]: e["name"] for e in self.events.values()}

    def properties(self, event: str) -> dict[str, dict[str, Any]]:
        """The filterable properties of an event by name."""
        return {p["name"]: p for p in (self.events.get(event) or {}).get("properties") or []}


def value_kind(ftype: str, op: str, has_values: bool) -> str:
    """Which value widget a field type and operator take (``none`` for ``is_set``/``is_not_set``)."""
    if op in ("is_set", "is_not_set"):
        return "none"
    multi = op in ("in", "not_in")
    if ftype in NUMERIC:
        return "num_range" if op == "between" else ("num_list" if multi else "num")
    if ftype == "date":
        return {"before": "date", "after": "date", "between": "date_range"}.get(op, "days")
    if ftype == "boolean":
        return "bool"
    if has_values and (ftype in ("enum", "set") or multi) and op not in ("starts_with",):
        return "choices" if multi else "choice"
    return "texts" if multi else "text"


def parse_number(text: str) -> Any:
    """A typed number (``$1,250`` → 1250); empty → ``None``; anything else is passed on for the API to refuse."""
    s = (text or "").strip().replace(",", "").replace("$", "").replace("%", "").strip()
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        return text.strip()
    if not math.isfinite(v):
        return text.strip()
    return int(v) if v.is_integer() else v


def _iso(d: Any) -> str | None:
    return d.isoformat() if isinstance(d, date) else None


def _date(s: Any) -> date | None:
    try:
        return date.fromisoformat(str(s)[:10]) if s else None
    except ValueError:
        return None


def word(text: str, cls: str = "gl-seg-word") -> pn.pane.HTML:
    """A grey word between widgets ("and", "days", "$"); ``text`` is trusted HTML."""
    return pn.pane.HTML(f'<span class="{cls}">{text}</span>', stylesheets=[BUILDER_CSS], align="center",
                        margin=(0, 4))


class ValueEditor:
    """The value widgets of one condition; :attr:`value` is the JSON value, ``None`` while incomplete."""

    def __init__(self, on_change: Callable[[], None], css: str = "gl-seg-value") -> None:
        self.on_change, self.css = on_change, css
        self.view = pn.Row(margin=0)
        self.kind: str | None = None
        self._key: tuple = ()
        self.widgets: list[Any] = []

    def set(self, kind: str, *, values: list[Any] | None = None, unit: str | None = None, value: Any = None,
            keep: bool = True) -> None:
        """Show the widgets of ``kind``; an unchanged kind keeps what the user typed (when ``keep``)."""
        key = (kind, tuple(values or ()), unit)
        if keep and key == self._key:
            return
        self._key, self.kind = key, kind
        self.widgets = []
        parts: list[Any] = []
        if kind in ("num", "num_range", "num_list", "days"):
            lo, hi = value, None
            if kind == "num_range":
                lo, hi = value if isinstance(value, list | tuple) and len(value) == 2 else (None, None)
            if kind == "num_list":
                text = ", ".join(str(v) for v in value) if isinstance(value, list) else ""
                self.widgets = [self._text(text, "e.g. 1, 2, 3", 160)]
            else:
                self.widgets = [self._text("" if lo is None else str(lo), "value", 100)]
                if kind == "num_range":
                    self.widgets.append(self._text("" if hi is None else str(hi), "value", 100))
            unit = "days" if kind == "days" else unit
            for i, w in enumerate(self.widgets):
                if i:
                    parts.append(word("and"))
                if unit == "$":
                    parts.append(word("$"))
                parts.append(w)
                if unit and unit != "$":
                    parts.append(word(unit))
        elif kind in ("date", "date_range"):
            vals = value if kind == "date_range" and isinstance(value, list | tuple) else [value]
            for i in range(2 if kind == "date_range" else 1):
                w = pn.widgets.DatePicker(value=_date(vals[i] if i < len(vals) else None), width=130,
                                          css_classes=[self.css, f"{self.css}-{i}"])
                w.param.watch(self._changed, "value")
                self.widgets.append(w)
                parts += [word("and")] if i else []
                parts.append(w)
        elif kind in ("choice", "bool"):
            opts: Any = {"yes": True, "no": False} if kind == "bool" else [str(v) for v in values or []]
            allowed = list(opts.values()) if kind == "bool" else opts
            init = value if value in allowed else (allowed[0] if allowed else None)
            w = pn.widgets.Select(options=opts, value=init, width=180, css_classes=[self.css, f"{self.css}-0"])
            w.param.watch(self._changed, "value")
            self.widgets, parts = [w], [w]
        elif kind == "choices":
            opts = [str(v) for v in values or []]
            init = [str(v) for v in value] if isinstance(value, list) else []
            w = pn.widgets.MultiChoice(options=opts, value=[v for v in init if v in opts], width=280,
                                       css_classes=[self.css, f"{self.css}-0"])
            w.param.watch(self._changed, "value")
            self.widgets, parts = [w], [w]
        elif kind in ("text", "texts"):
            text = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
            self.widgets = [self._text(text, "comma-separated" if kind == "texts" else "text", 200)]
            parts = list(self.widgets)
        self.view.objects = parts

    def _text(self, text: str, placeholder: str, width: int) -> pn.widgets.TextInput:
        w = pn.widgets.TextInput(value=text, value_input=text, placeholder=placeholder, width=width,
                                 css_classes=[self.css, f"{self.css}-{len(self.widgets)}"])
        w.param.watch(self._changed, "value_input")
        return w

    def _changed(self, _event: Any = None) -> None:
        self.on_change()

    def _raw(self, w: Any) -> Any:
        return w.value_input if isinstance(w, pn.widgets.TextInput) else w.value

    @property
    def value(self) -> Any:
        """The value as the API takes it (``None`` when the user has not filled it in)."""
        k, ws = self.kind, self.widgets
        if k in (None, "none"):
            return None
        raw = [self._raw(w) for w in ws]
        if k in ("num", "days"):
            return parse_number(raw[0])
        if k == "num_range":
            lo, hi = (parse_number(r) for r in raw)
            return None if lo is None or hi is None else [lo, hi]
        if k == "num_list":
            vals = [parse_number(p) for p in (raw[0] or "").split(",")]
            return [v for v in vals if v is not None] or None
        if k == "date":
            return _iso(raw[0])
        if k == "date_range":
            return None if None in raw else [_iso(raw[0]), _iso(raw[1])]
        if k in ("choice", "bool"):
            return raw[0]
        if k == "choices":
            return list(raw[0]) or None
        if k == "texts":
            return [p.strip() for p in (raw[0] or "").split(",") if p.strip()] or None
        return (raw[0] or "").strip() or None

    @property
    def complete(self) -> bool:
        """Whether the widgets hold a value (always, for ``is_set``)."""
        return self.kind == "none" or self.value is not None
