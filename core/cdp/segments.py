"""The segment rule language: rule JSON parsed into typed, immutable nodes and back, checked against the field
catalogue.

A rule is a group (``{"all": [...]}``, ``{"any": [...]}`` or ``{"not": node}``) of groups and conditions: a trait
of the profile (:class:`TraitCondition`), a behaviour counted from the activity tables (:class:`EventCondition`)
or membership of another segment (:class:`SegmentCondition`). Every mistake raises :class:`RuleError` naming where
it is (``rules.all[2].any[0].value: expected a number``), so the builder can point at it. References to other
segments are resolved through a ``lookup(segment_id) -> rule JSON | None`` callback and cycles are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from core.cdp.fields import COUNT_OPERATORS, EVENTS, FIELD_BY_NAME, WHERE_OPERATORS, EventType, Field
from core.cdp.segment_nodes import (
    Count,
    EventCondition,
    Group,
    Node,
    Not,
    Rule,
    SegmentCondition,
    TraitCondition,
    Where,
    Window,
    conditions,
    to_json,
)

__all__ = [
    "RuleError", "Rule", "Group", "Not", "TraitCondition", "EventCondition", "SegmentCondition", "Count",
    "Window", "Where", "Node", "Lookup", "parse_rule", "to_json", "conditions", "referenced_segments",
    "fields_used", "events_used", "as_fields", "MAX_DEPTH", "MAX_CONDITIONS", "MAX_REFERENCE_DEPTH",
]

MAX_DEPTH = 12  # nested groups, the root included
MAX_CONDITIONS = 200
MAX_REFERENCE_DEPTH = 16  # segments referring to segments referring to ...
MAX_VALUES = 1000  # items of an in / not_in list
MAX_TEXT = 500
MAX_DAYS = 36600  # 100 years
MAX_COUNT = 1_000_000
MAX_NUMBER = 1e15  # larger values are mistakes (and do not fit the SQL types)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMERIC = ("number", "integer", "money")
_NO_VALUE = ("is_set", "is_not_set")
_LISTS = ("in", "not_in")

Lookup = Callable[[str], Any]


class RuleError(ValueError):
    """An invalid rule: ``path`` (e.g. ``rules.all[0].value``) and ``message``; ``str()`` gives both."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def as_fields(fields: Mapping[str, Field] | Iterable[Field] | None,
              columns: Iterable[str] | None = None) -> dict[str, Field]:
    """The fields a rule may use, by name: ``fields`` (default: the whole catalogue), and of those only the ones a
    profile table with ``columns`` can answer when ``columns`` is given."""
    if fields is None:
        out = dict(FIELD_BY_NAME)
    elif isinstance(fields, Mapping):
        out = dict(fields)
    else:
        out = {f.name: f for f in fields}
    if columns is not None:
        cols = set(columns)
        out = {k: f for k, f in out.items() if f.available(cols)}
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= MAX_NUMBER and \
        (isinstance(v, int) or math.isfinite(v))


def _keys(obj: dict, allowed: tuple[str, ...], path: str) -> None:
    for k in obj:
        if k not in allowed:
            raise RuleError(f"{path}.{k}", f"unknown key (expected {', '.join(allowed)})")


def _day(v: Any, path: str) -> date:
    if isinstance(v, str) and _DATE.fullmatch(v):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    raise RuleError(path, "expected a date (YYYY-MM-DD)")


def _days(v: Any, path: str, low: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= MAX_DAYS:
        raise RuleError(path, f"expected a whole number of days from {low} to {MAX_DAYS}")
    return v


def _pair(v: Any, path: str, item: Callable[[Any, str], Any]) -> tuple[Any, Any]:
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise RuleError(path, "expected a list of two values [from, to]")
    lo, hi = item(v[0], f"{path}[0]"), item(v[1], f"{path}[1]")
    if lo > hi:
        raise RuleError(path, "the first bound is after the second")
    return lo, hi


def _list(v: Any, path: str, item: Callable[[Any, str], Any]) -> tuple[Any, ...]:
    if not isinstance(v, list | tuple):
        raise RuleError(path, "expected a list of values")
    if not v or len(v) > MAX_VALUES:
        raise RuleError(path, f"expected 1 to {MAX_VALUES} values")
    return tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))


def _number(v: Any, path: str) -> int | float:
    if not _is_number(v):
        raise RuleError(path, "expected a number")
    return v


def _text(v: Any, path: str) -> str:
    if not isinstance(v, str) or not v or len(v) > MAX_TEXT:
        raise RuleError(path, f"expected text (1 to {MAX_TEXT} characters)")
    return v


def _choice(values: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(v: Any, path: str) -> str:
        if v not in values:
            raise RuleError(path, f"expected one of {', '.join(repr(x) for x in values)}")
        return v
    return check


def _element(v: Any, path: str) -> str:
    v = _text(v, path)
    if "," in v:
        raise RuleError(path, "expected one value (no commas)")
    return v


def _trait_value(f: Field, op: str, obj: dict, path: str) -> Any:
    """The checked, normalised value of a trait condition (lists become tuples, dates :class:`date`)."""
    vpath = f"{path}.value"
    if op in _NO_VALUE:
        if obj.get("value") is not None:
            raise RuleError(vpath, f"'{op}' takes no value")
        return None
    if "value" not in obj or obj["value"] is None:
        raise RuleError(vpath, "missing value")
    v = obj["value"]
    if f.type in _NUMERIC:
        if op == "between":
            return _pair(v, vpath, _number)
        return _list(v, vpath, _number) if op in _LISTS else _number(v, vpath)
    if f.type == "date":
        if op == "between":
            return _pair(v, vpath, _day)
        return _days(v, vpath) if op in ("within_last", "more_than_ago") else _day(v, vpath)
    if f.type == "boolean":
        if not isinstance(v, bool):
            raise RuleError(vpath, "expected true or false")
        return v
    item = _choice(f.values) if f.type == "enum" else _element if f.type == "set" else _text
    return _list(v, vpath, item) if op in _LISTS else item(v, vpath)


class _Parser:
    def __init__(self, fields: dict[str, Field], events: Mapping[str, EventType], lookup: Lookup | None,
                 segment_id: str | None) -> None:
        self.fields, self.events, self.lookup, self.segment_id = fields, events, lookup, segment_id
        self.n_conditions = 0
        self.checked: set[str] = set()  # referenced segments already known to be valid and acyclic

    def node(self, obj: Any, path: str, depth: int) -> Node:
        if not isinstance(obj, dict):
            raise RuleError(path, "expected an object (a group or a condition)")
        groups = [k for k in ("all", "any", "not") if k in obj]
        if len(groups) > 1:
            raise RuleError(path, f"a group has exactly one of 'all', 'any' or 'not', not {' and '.join(groups)}")
        if groups:
            return self.group(obj, groups[0], path, depth + 1)
        kinds = [k for k in ("field", "event", "segment") if k in obj]
        if len(kinds) > 1:
            raise RuleError(path, f"a condition has exactly one of 'field', 'event' or 'segment', not "
                                  f"{' and '.join(kinds)}")
        if not kinds:
            raise RuleError(path, "expected a group ('all', 'any' or 'not') or a condition ('field', 'event' or "
                                  "'segment')")
        self.n_conditions += 1
        if self.n_conditions > MAX_CONDITIONS:
            raise RuleError(path, f"a rule has at most {MAX_CONDITIONS} conditions")
        return {"field": self.trait, "event": self.behaviour, "segment": self.segment}[kinds[0]](obj, path)

    def group(self, obj: dict, kind: str, path: str, depth: int) -> Group | Not:
        if depth > MAX_DEPTH:
            raise RuleError(path, f"groups nest at most {MAX_DEPTH} levels deep")
        _keys(obj, (kind,), path)
        sub = f"{path}.{kind}"
        if kind == "not":
            return Not(self.node(obj["not"], sub, depth))
        items = obj[kind]
        if not isinstance(items, list):
            raise RuleError(sub, "expected a list of conditions and groups")
        return Group(kind, tuple(self.node(x, f"{sub}[{i}]", depth) for i, x in enumerate(items)))

    def trait(self, obj: dict, path: str) -> TraitCondition:
        _keys(obj, ("field", "op", "value"), path)
        name = obj["field"]
        if not isinstance(name, str):
            raise RuleError(f"{path}.field", "expected a field name")
        f = self.fields.get(name)
        if f is None:
            known = FIELD_BY_NAME.get(name)
            why = f"field '{name}' is not available (no {', '.join(known.requires)} column in the profiles)" \
                if known else f"unknown field '{name}'"
            raise RuleError(f"{path}.field", why)
        op = obj.get("op")
        if not isinstance(op, str):
            raise RuleError(f"{path}.op", "missing operator")
        if op not in f.operators:
            raise RuleError(f"{path}.op", f"operator '{op}' is not allowed for the {f.type} field '{name}' "
                                          f"(allowed: {', '.join(f.operators)})")
        return TraitCondition(name, op, _trait_value(f, op, obj, path))

    def behaviour(self, obj: dict, path: str) -> EventCondition:
        _keys(obj, ("event", "did", "count", "window", "where"), path)
        name = obj["event"]
        ev = self.events.get(name) if isinstance(name, str) else None
        if ev is None:
            raise RuleError(f"{path}.event", f"unknown event {name!r}" if isinstance(name, str) else
                            "expected an event name")
        did = obj.get("did", True)
        if not isinstance(did, bool):
            raise RuleError(f"{path}.did", "expected true or false")
        count = self.count(obj["count"], f"{path}.count") if obj.get("count") is not None else Count()
        window = self.window(obj["window"], f"{path}.window") if obj.get("window") is not None else Window()
        where = self.where(obj["where"], ev, f"{path}.where") if obj.get("where") is not None else None
        return EventCondition(name, did, count, window, where)

    @staticmethod
    def count(obj: Any, path: str) -> Count:
        if not isinstance(obj, dict):
            raise RuleError(path, "expected an object {\"op\": \"gte\", \"value\": 1}")
        _keys(obj, ("op", "value"), path)
        op = obj.get("op", "gte")
        if op not in COUNT_OPERATORS:
            raise RuleError(f"{path}.op", f"expected one of {', '.join(COUNT_OPERATORS)}")
        v = obj.get("value")
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
            raise RuleError(f"{path}.value", f"expected a whole number from 0 to {MAX_COUNT}")
        return Count(op, v)

    @staticmethod
    def window(obj: Any, path: str) -> Window:
        kinds = ("last_days", "between", "ever")
        if not isinstance(obj, dict) or len(obj) != 1:
            raise RuleError(path, "expected one of {\"last_days\": N}, {\"between\": [from, to]} or "
                                  "{\"ever\": true}")
        _keys(obj, kinds, path)
        kind, v = next(iter(obj.items()))
        if kind == "last_days":
            return Window("last_days", days=_days(v, f"{path}.last_days", low=1))
        if kind == "between":
            start, end = _pair(v, f"{path}.between", _day)
            return Window("between", start=start, end=end)
        if v is not True:
            raise RuleError(f"{path}.ever", "expected true")
        return Window()

    @staticmethod
    def where(obj: Any, ev: EventType, path: str) -> Where:
        if not isinstance(obj, dict):
            raise RuleError(path, "expected an object {\"property\", \"op\", \"value\"}")
        _keys(obj, ("property", "op", "value"), path)
        prop = obj.get("property")
        if prop not in ev.properties:
            raise RuleError(f"{path}.property", f"event '{ev.name}' has no property {prop!r} (it has "
                                                f"{', '.join(ev.properties)})")
        op = obj.get("op")
        if op not in WHERE_OPERATORS:
            raise RuleError(f"{path}.op", f"expected one of {', '.join(WHERE_OPERATORS)}")
        v = obj.get("value")
        value = _list(v, f"{path}.value", _text) if op in _LISTS else _text(v, f"{path}.value")
        return Where(prop, op, value)

    def segment(self, obj: dict, path: str) -> SegmentCondition:
        _keys(obj, ("segment", "op"), path)
        sid, op = obj["segment"], obj.get("op", "in")
        if not isinstance(sid, str) or not sid:
            raise RuleError(f"{path}.segment", "expected a segment id")
        if op not in ("in", "not_in"):
            raise RuleError(f"{path}.op", "expected 'in' or 'not_in'")
        if self.lookup is not None:
            self.check_reference(sid, f"{path}.segment")
        return SegmentCondition(sid, op)

    def check_reference(self, sid: str, path: str) -> None:
        """Unknown, invalid or cyclic references anywhere below ``sid`` raise at ``path``."""
        if sid == self.segment_id:
            raise RuleError(path, f"segment '{sid}' refers to itself")

        def visit(cur: str, chain: list[str]) -> None:
            if cur in self.checked:
                return
            if len(chain) >= MAX_REFERENCE_DEPTH:
                raise RuleError(path, f"segments refer to each other more than {MAX_REFERENCE_DEPTH} levels deep")
            rule_json = self.lookup(cur)
            if rule_json is None:
                raise RuleError(path, f"unknown segment '{cur}'" if not chain else
                                f"segment '{chain[-1]}' refers to an unknown segment '{cur}'")
            try:
                rule = parse_rule(rule_json, fields=self.fields, events=self.events)
            except RuleError as e:
                raise RuleError(path, f"segment '{cur}' has an invalid rule ({e})") from e
            walked = [*chain, cur]
            for ref in sorted(referenced_segments(rule)):
                if ref == self.segment_id or ref in walked:
                    start = ref
                    through = walked if ref == self.segment_id else walked[walked.index(ref) + 1:]
                    if not through:
                        raise RuleError(path, f"segment '{start}' refers to itself")
                    raise RuleError(path, f"segment '{start}' refers back to itself through "
                                          f"{' and '.join(repr(s) for s in through)}")
                visit(ref, walked)
            self.checked.add(cur)

        visit(sid, [])


def parse_rule(obj: Any, fields: Mapping[str, Field] | Iterable[Field] | None = None,
               lookup: Lookup | None = None, *, columns: Iterable[str] | None = None,
               events: Mapping[str, EventType] | None = None, segment_id: str | None = None) -> Rule:
    """Check rule JSON against ``fields`` (default: the whole catalogue; with ``columns``, only the fields a
    profile table with those columns can answer) and ``events``, and return its typed form. With ``lookup``
    (segment id -> stored rule JSON, or None when there is no such segment), referenced segments must exist, be
    valid and not lead back to ``segment_id`` (the segment being saved) or to themselves; without it, references
    are not checked. Raises :class:`RuleError`."""
    if isinstance(obj, Rule):
        obj = to_json(obj)
    p = _Parser(as_fields(fields, columns), EVENTS if events is None else events, lookup, segment_id)
    root = p.node(obj, "rules", 0)
    if not isinstance(root, Group | Not):
        raise RuleError("rules", "a rule is a group: wrap the condition in {\"all\": [...]}")
    return Rule(root)


def _closure(rule: Rule | dict, lookup: Lookup | None) -> list[Rule]:
    """``rule`` (parsed when JSON: :class:`RuleError` if invalid) and, with ``lookup``, every segment rule it
    reaches (each once; missing ones skipped)."""
    if not isinstance(rule, Rule):
        rule = parse_rule(rule)
    out, seen, todo = [rule], set(), [rule]
    while todo and lookup is not None:
        for c in conditions(todo.pop()):
            if isinstance(c, SegmentCondition) and c.segment not in seen:
                seen.add(c.segment)
                found = lookup(c.segment)
                if found is not None:
                    sub = parse_rule(found)
                    out.append(sub)
                    todo.append(sub)
    return out


def referenced_segments(rule: Rule | dict, lookup: Lookup | None = None) -> frozenset[str]:
    """Ids of the segments ``rule`` refers to; with ``lookup``, also those they refer to, transitively."""
    return frozenset(c.segment for r in _closure(rule, lookup) for c in conditions(r)
                     if isinstance(c, SegmentCondition))


def fields_used(rule: Rule | dict, lookup: Lookup | None = None) -> frozenset[str]:
    """Names of the profile fields the rule tests (through referenced segments too, with ``lookup``)."""
    return frozenset(c.field for r in _closure(rule, lookup) for c in conditions(r) if isinstance(c, TraitCondition))


def events_used(rule: Rule | dict, lookup: Lookup | None = None) -> frozenset[str]:
    """Names of the events the rule counts (through referenced segments too, with ``lookup``)."""
    return frozenset(c.event for r in _closure(rule, lookup) for c in conditions(r) if isinstance(c, EventCondition))

