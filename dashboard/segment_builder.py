"""The segment rule builder: groups of conditions edited with widgets, read back as the API's rule JSON.

A :class:`GroupBox` is one ``all``/``any`` group (or "none of these" = ``{"not": {"any": [...]}}``) holding trait
conditions (:class:`ConditionRow`: field, operator in plain words, a value widget fitting the field's type),
behaviour conditions (:class:`BehaviourRow`: did / did not EVENT at least N times in a window, optional property
filter), segment membership (:class:`SegmentRow`) and nested groups, to any depth. Every edit calls the
``on_change`` callback the page passes in; the page reads :meth:`GroupBox.to_json` and previews it. The options come
from ``GET /api/segments/fields`` (:class:`~dashboard.segment_values.Catalogue`), so a field the API does not offer
is never shown. A rule loaded for editing is shown the same way (``GroupBox(cat, cb, node=rule)``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import panel as pn

from dashboard.segment_values import BUILDER_CSS, Catalogue, ValueEditor, parse_number, value_kind, word

__all__ = ["GroupBox", "ConditionRow", "BehaviourRow", "SegmentRow", "error_tokens", "COUNT_OPS", "PROP_OPS",
           "MODES", "MAX_DEPTH"]

COUNT_OPS = {"at least": "gte", "at most": "lte", "exactly": "eq"}
WINDOWS = {"in the last": "last", "between": "between", "ever": "ever"}
PROP_OPS = ("eq", "ne", "in", "not_in", "contains", "starts_with")
MODES = ("ALL", "ANY", "NONE")
MAX_DEPTH = 12
DEFAULT_FIELD = "lifetime_value"  # what a new condition starts with (when the catalogue offers it)


class _Row:
    """Shared parts of a condition row: remove button, inline error, completeness."""

    what = "condition"

    def __init__(self, on_change: Callable[[], None], on_remove: Callable[[Any], None]) -> None:
        self.on_change = on_change
        self.remove = pn.widgets.Button(name="✕", width=36, button_type="light", css_classes=["gl-seg-remove"],
                                        description="Remove this condition", align="center")
        self.remove.on_click(lambda _e: on_remove(self))
        self.error = pn.pane.HTML("", stylesheets=[BUILDER_CSS], visible=False, margin=(0, 10))

    def set_error(self, message: str | None) -> None:
        """Show (or clear) an error next to this row."""
        self.error.object = f'<div class="gl-seg-row-error">{html.escape(message)}</div>' if message else ""
        self.error.visible = bool(message)

    def _changed(self, _event: Any = None) -> None:
        self.on_change()

    @property
    def complete(self) -> bool:
        return True


class ConditionRow(_Row):
    """A trait condition: ``{"field", "op", "value"}``."""

    def __init__(self, cat: Catalogue, on_change: Callable[[], None], on_remove: Callable[[Any], None],
                 node: dict[str, Any] | None = None) -> None:
        super().__init__(on_change, on_remove)
        self.cat = cat
        node = node or {}
        name = next(n for n in (node.get("field"), DEFAULT_FIELD, *cat.fields) if n in cat.fields)
        self.field = pn.widgets.Select(groups=cat.field_groups(), value=name, width=240, css_classes=["gl-seg-field"])
        self.op = pn.widgets.Select(width=200, css_classes=["gl-seg-op"])
        self.editor = ValueEditor(self._changed)
        self._syncing = False
        self._set_field(name, node.get("op"), node.get("value"))
        self.field.param.watch(self._on_field, "value")
        self.op.param.watch(self._on_op, "value")
        self.view = pn.Column(pn.Row(self.field, self.op, self.editor.view, self.remove, margin=0), self.error,
                              css_classes=["gl-seg-cond"], margin=(2, 0))

    def _set_field(self, name: str, op: str | None = None, value: Any = None) -> None:
        f = self.cat.fields[name]
        ops = list(f.get("operators") or [])
        self._syncing = True
        try:
            self.op.options = self.cat.op_options(ops)
            self.op.value = op if op in ops else (self.op.value if self.op.value in ops else ops[0])
        finally:
            self._syncing = False
        self._set_value(value, keep=False)

    def _set_value(self, value: Any = None, keep: bool = True) -> None:
        f = self.cat.fields[self.field.value]
        kind = value_kind(f["type"], self.op.value, bool(f.get("values")))
        self.editor.set(kind, values=f.get("values"), unit=f.get("unit"), value=value, keep=keep)

    def _on_field(self, event: Any) -> None:
        self._set_field(event.new)
        self.on_change()

    def _on_op(self, _event: Any) -> None:
        if self._syncing:
            return
        self._set_value()
        self.on_change()

    @property
    def complete(self) -> bool:
        return self.editor.complete

    def to_json(self) -> dict[str, Any]:
        node: dict[str, Any] = {"field": self.field.value, "op": self.op.value}
        if self.editor.kind != "none":
            node["value"] = self.editor.value
        return node


class BehaviourRow(_Row):
    """A behaviour condition: did / did not EVENT at least/at most/exactly N times in a window, where PROPERTY …"""

    what = "behaviour"

    def __init__(self, cat: Catalogue, on_change: Callable[[], None], on_remove: Callable[[Any], None],
                 node: dict[str, Any] | None = None) -> None:
        super().__init__(on_change, on_remove)
        self.cat = cat
        node = node or {}
        events = cat.event_options()
        ev = node.get("event") if node.get("event") in cat.events else next(iter(events.values()))
        count = node.get("count") or {"op": "gte", "value": 1}
        window = node.get("window") or {"ever": True}
        wkind = "last" if "last_days" in window else ("between" if "between" in window else "ever")
        self.did = pn.widgets.Select(options={"did": True, "did not": False}, value=node.get("did", True) is not False,
                                     width=90, css_classes=["gl-seg-did"])
        self.event = pn.widgets.Select(options=events, value=ev, width=210, css_classes=["gl-seg-event"])
        self.count_op = pn.widgets.Select(options=COUNT_OPS, value=count.get("op", "gte"), width=105,
                                          css_classes=["gl-seg-count-op"])
        n = str(count.get("value", 1))
        self.count = pn.widgets.TextInput(value=n, value_input=n, width=70, css_classes=["gl-seg-times"])
        self.window = pn.widgets.Select(options=WINDOWS, value=wkind, width=120, css_classes=["gl-seg-window"])
        self.window_value = ValueEditor(self._changed, css="gl-seg-window-value")
        self.prop = pn.widgets.Select(width=170, css_classes=["gl-seg-prop"])
        self.prop_op = pn.widgets.Select(options=cat.op_options(PROP_OPS), width=150, css_classes=["gl-seg-prop-op"])
        self.prop_value = ValueEditor(self._changed, css="gl-seg-prop-value")
        self._syncing = False
        where = node.get("where") or {}
        self._set_window(window.get("last_days") if wkind == "last" else window.get("between"))
        self._set_event(ev, where)
        for w, cb in ((self.did, self._changed), (self.count_op, self._changed), (self.window, self._on_window),
                      (self.event, self._on_event), (self.prop, self._on_prop), (self.prop_op, self._on_prop)):
            w.param.watch(cb, "value")
        self.count.param.watch(self._changed, "value_input")
        self.where_row = pn.Row(word("where"), self.prop, self.prop_op, self.prop_value.view, margin=(0, 0, 0, 95))
        line = pn.FlexBox(self.did, self.event, self.count_op, self.count, word("times"), self.window,
                          self.window_value.view, self.remove, flex_wrap="wrap", align_items="center", margin=0,
                          sizing_mode="stretch_width")  # a window between two dates wraps on narrow screens
        self.view = pn.Column(line, self.where_row, self.error, css_classes=["gl-seg-behaviour"], margin=(2, 0),
                              sizing_mode="stretch_width")

    def _set_window(self, value: Any = None) -> None:
        kind = {"last": "days", "between": "date_range"}.get(self.window.value, "none")
        self.window_value.set(kind, value=value, keep=False)

    def _set_event(self, event: str, where: dict[str, Any] | None = None) -> None:
        props = self.cat.properties(event)
        where = where or {}
        self._syncing = True
        try:
            self.prop.options = {"any (no filter)": "", **{p.get("label") or n: n for n, p in props.items()}}
            self.prop.value = where.get("property") if where.get("property") in props else ""
            if where.get("op") in PROP_OPS:
                self.prop_op.value = where["op"]
        finally:
            self._syncing = False
        self._set_prop(where.get("value"), keep=False)

    def _set_prop(self, value: Any = None, keep: bool = True) -> None:
        p = self.cat.properties(self.event.value).get(self.prop.value or "")
        self.prop_op.visible = p is not None
        if p is None:
            self.prop_value.set("none")
            return
        op, known = self.prop_op.value, bool(p.get("values"))
        kind = ("choices" if op in ("in", "not_in") else "choice") if known and op in ("eq", "ne", "in", "not_in") \
            else value_kind("string", op, False)
        self.prop_value.set(kind, values=p.get("values"), value=value, keep=keep)

    def _on_event(self, event: Any) -> None:
        self._set_event(event.new)
        self.on_change()

    def _on_window(self, _event: Any) -> None:
        self._set_window()
        self.on_change()

    def _on_prop(self, _event: Any) -> None:
        if self._syncing:
            return
        self._set_prop()
        self.on_change()

    @property
    def complete(self) -> bool:
        return (bool(self.count.value_input.strip()) and self.window_value.complete
                and (not self.prop.value or self.prop_value.complete))

    def to_json(self) -> dict[str, Any]:
        node: dict[str, Any] = {"event": self.event.value, "did": bool(self.did.value),
                                "count": {"op": self.count_op.value,
                                          "value": parse_number(self.count.value_input)}}
        w = self.window.value
        node["window"] = ({"last_days": self.window_value.value} if w == "last" else
                          {"between": self.window_value.value} if w == "between" else {"ever": True})
        if self.prop.value:
            node["where"] = {"property": self.prop.value, "op": self.prop_op.value, "value": self.prop_value.value}
        return node


class SegmentRow(_Row):
    """Membership of another saved segment: ``{"segment": id, "op": "in" | "not_in"}``."""

    what = "segment condition"

    def __init__(self, cat: Catalogue, on_change: Callable[[], None], on_remove: Callable[[Any], None],
                 node: dict[str, Any] | None = None, exclude: str | None = None) -> None:
        super().__init__(on_change, on_remove)
        node = node or {}
        opts = {name: sid for sid, name in cat.segments.items() if sid != exclude}
        if node.get("segment") and node["segment"] not in opts.values():
            opts[node["segment"]] = node["segment"]
        self.op = pn.widgets.Select(options={"is in segment": "in", "is not in segment": "not_in"},
                                    value=node.get("op", "in"), width=170, css_classes=["gl-seg-member-op"])
        self.segment = pn.widgets.Select(options=opts, value=node.get("segment") or next(iter(opts.values()), None),
                                         width=260, css_classes=["gl-seg-member-of"])
        for w in (self.op, self.segment):
            w.param.watch(self._changed, "value")
        self.view = pn.Column(pn.Row(self.op, self.segment, self.remove, margin=0), self.error,
                              css_classes=["gl-seg-member"], margin=(2, 0))

    @property
    def complete(self) -> bool:
        return bool(self.segment.value)

    def to_json(self) -> dict[str, Any]:
        return {"segment": self.segment.value, "op": self.op.value}


def _group_parts(node: dict[str, Any]) -> tuple[str, list[Any]]:
    """A group node as (mode, children); ``not`` of anything but ``any`` becomes "none of" that one node."""
    if "all" in node:
        return "ALL", list(node["all"] or [])
    if "any" in node:
        return "ANY", list(node["any"] or [])
    if "not" in node:
        inner = node["not"]
        if isinstance(inner, dict) and set(inner) == {"any"}:
            return "NONE", list(inner["any"] or [])
        return "NONE", [inner]
    return "ALL", [node]  # a bare condition as the root


def _is_group(node: Any) -> bool:
    return isinstance(node, dict) and bool({"all", "any", "not"} & set(node))


_TOKEN = re.compile(r"(all|any|not)(?:\[(\d+)\])?")


def error_tokens(message: str) -> list[tuple[str, int | None]]:
    """The group steps of an API error path: ``rules.all[2].any[0].value: …`` → ``[("all", 2), ("any", 0)]``."""
    path = message.split(":", 1)[0].strip()
    if not path.startswith("rules"):
        return []
    return [(m.group(1), int(m.group(2)) if m.group(2) else None) for m in _TOKEN.finditer(path[len("rules"):])]


class GroupBox:
    """One group of conditions with its ALL / ANY / NONE toggle and add buttons; nests to any depth."""

    what = "group"

    def __init__(self, cat: Catalogue, on_change: Callable[[], None], node: dict[str, Any] | None = None,
                 on_remove: Callable[[Any], None] | None = None, depth: int = 0, exclude: str | None = None) -> None:
        self.cat, self.on_change, self.depth, self.exclude = cat, on_change, depth, exclude
        mode, children = _group_parts(node or {"all": []})
        self.mode = pn.widgets.RadioButtonGroup(options=list(MODES), value=mode, button_type="primary",
                                                button_style="outline", width=190, css_classes=["gl-seg-mode"])
        self.mode.param.watch(lambda _e: self.on_change(), "value")
        self.children: list[Any] = []
        self.body = pn.Column(margin=(0, 0, 0, 8), sizing_mode="stretch_width")
        self.error = pn.pane.HTML("", stylesheets=[BUILDER_CSS], visible=False, margin=(0, 10))
        lead = "IF customer matches" if depth == 0 else "matches"
        head: list[Any] = [word(lead, "gl-seg-if"), self.mode, word("of these")]
        if on_remove is not None:
            rm = pn.widgets.Button(name="✕ group", width=80, button_type="light", css_classes=["gl-seg-remove-group"],
                                   align="center")
            rm.on_click(lambda _e: on_remove(self))
            head.append(rm)
        buttons = []
        for label, kind, cls in (("+ condition", "trait", "condition"), ("+ behaviour", "event", "behaviour"),
                                 ("+ in segment", "segment", "segment"), ("+ group", "group", "group")):
            b = pn.widgets.Button(name=label, button_type="light", width=115, css_classes=[f"gl-seg-add-{cls}"])
            b.on_click(lambda _e, k=kind: self.add(k))
            b.disabled = ((kind == "segment" and not self._segment_choices()) or (kind == "trait" and not cat.fields)
                          or (kind == "event" and not cat.events) or (kind == "group" and depth + 1 >= MAX_DEPTH))
            buttons.append(b)
        styles = ({"border": "1px solid #e3e6ea", "border-radius": "10px", "background": "#fff", "padding": "8px"}
                  if depth == 0 else {"border-left": "3px solid #c9d7f2", "padding-left": "8px",
                                      "background": "#f8faff" if depth % 2 else "#fff"})
        self.view = pn.Column(pn.Row(*head, margin=0), self.error, self.body, pn.Row(*buttons, margin=(0, 0, 0, 8)),
                              css_classes=["gl-seg-group", f"gl-seg-depth-{depth}"] + (["gl-seg-root"] if not depth
                                                                                       else []),
                              styles=styles, sizing_mode="stretch_width", margin=(4, 0))
        for child in children:
            self.add(_kind_of(child), child, notify=False)

    def _segment_choices(self) -> bool:
        return any(sid != self.exclude for sid in self.cat.segments)

    def add(self, kind: str, node: dict[str, Any] | None = None, notify: bool = True) -> Any:
        """Append a child (``trait``, ``event``, ``segment`` or ``group``) and show it."""
        if kind == "group":
            child: Any = GroupBox(self.cat, self.on_change, node, on_remove=self.remove, depth=self.depth + 1,
                                  exclude=self.exclude)
        elif kind == "event":
            child = BehaviourRow(self.cat, self.on_change, self.remove, node)
        elif kind == "segment":
            child = SegmentRow(self.cat, self.on_change, self.remove, node, exclude=self.exclude)
        else:
            child = ConditionRow(self.cat, self.on_change, self.remove, node)
        self.children.append(child)
        self.body.objects = [*self.body.objects, child.view]
        if notify:
            self.on_change()
        return child

    def remove(self, child: Any) -> None:
        """Drop a child row or group."""
        if child in self.children:
            self.children.remove(child)
            self.body.objects = [c.view for c in self.children]
            self.on_change()

    def to_json(self) -> dict[str, Any]:
        """The group as rule JSON (``NONE`` = ``{"not": {"any": [...]}}``)."""
        nodes = [c.to_json() for c in self.children]
        if self.mode.value == "NONE":
            return {"not": {"any": nodes}}
        return {self.mode.value.lower(): nodes}

    def walk(self) -> Iterator[Any]:
        """This group and every row and group inside it, in order."""
        yield self
        for c in self.children:
            yield from c.walk() if isinstance(c, GroupBox) else (c,)

    def first_incomplete(self) -> tuple[int, Any] | None:
        """The first row still missing a value, with its 1-based position among all rows."""
        rows = [r for r in self.walk() if not isinstance(r, GroupBox)]
        return next(((i, r) for i, r in enumerate(rows, 1) if not r.complete), None)

    @property
    def complete(self) -> bool:
        return self.first_incomplete() is None

    def set_error(self, message: str | None) -> None:
        self.error.object = f'<div class="gl-seg-row-error">{html.escape(message)}</div>' if message else ""
        self.error.visible = bool(message)

    def clear_errors(self) -> None:
        """Remove every inline error."""
        for item in self.walk():
            item.set_error(None)

    def locate(self, tokens: list[tuple[str, int | None]]) -> Any:
        """The row or group an API error path points at (the deepest one found)."""
        item: Any = self
        for key, idx in tokens:
            if not isinstance(item, GroupBox) or idx is None:
                continue
            if key in ("all", "any") and 0 <= idx < len(item.children):
                item = item.children[idx]
        return item


def _kind_of(node: Any) -> str:
    if _is_group(node):
        return "group"
    if isinstance(node, dict) and "event" in node:
        return "event"
    if isinstance(node, dict) and "segment" in node:
        return "segment"
    return "trait"
