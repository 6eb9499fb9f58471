"""The typed form of a segment rule: immutable nodes (groups, negation, trait, behaviour and segment conditions),
their canonical JSON and a walk over the conditions. :mod:`core.cdp.segments` parses and checks rule JSON into
these."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

__all__ = ["Rule", "Group", "Not", "TraitCondition", "EventCondition", "SegmentCondition", "Count", "Window",
           "Where", "Node", "to_json", "conditions"]


@dataclass(frozen=True)
class Group:
    kind: Literal["all", "any"]
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class TraitCondition:
    """``value``: a number, text, bool, :class:`datetime.date`, a day count, or a tuple of them (lists)."""

    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Count:
    op: Literal["gte", "lte", "eq"] = "gte"
    value: int = 1


@dataclass(frozen=True)
class Window:
    """``ever``, the ``last_days`` days before as_of, or the days ``start``..``end`` (inclusive)."""

    kind: Literal["ever", "last_days", "between"] = "ever"
    days: int | None = None
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class Where:
    property: str
    op: str
    value: str | tuple[str, ...]


@dataclass(frozen=True)
class EventCondition:
    event: str
    did: bool = True
    count: Count = field(default_factory=Count)
    window: Window = field(default_factory=Window)
    where: Where | None = None


@dataclass(frozen=True)
class SegmentCondition:
    segment: str
    op: Literal["in", "not_in"] = "in"


Node = Group | Not | TraitCondition | EventCondition | SegmentCondition


@dataclass(frozen=True)
class Rule:
    root: Group | Not


def to_json(node: Rule | Node) -> dict:
    """The canonical JSON of a rule or node (defaults written out), which :func:`parse_rule` reads back equal."""
    if isinstance(node, Rule):
        return to_json(node.root)
    if isinstance(node, Group):
        return {node.kind: [to_json(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": to_json(node.child)}
    if isinstance(node, TraitCondition):
        out: dict[str, Any] = {"field": node.field, "op": node.op}
        if node.value is not None:
            out["value"] = _plain(node.value)
        return out
    if isinstance(node, EventCondition):
        w = node.window
        window = {"ever": True} if w.kind == "ever" else {"last_days": w.days} if w.kind == "last_days" else \
            {"between": [w.start.isoformat(), w.end.isoformat()]}
        out = {"event": node.event, "did": node.did, "count": {"op": node.count.op, "value": node.count.value},
               "window": window}
        if node.where is not None:
            out["where"] = {"property": node.where.property, "op": node.where.op, "value": _plain(node.where.value)}
        return out
    if isinstance(node, SegmentCondition):
        return {"segment": node.segment, "op": node.op}
    raise TypeError(f"not a rule node: {node!r}")


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v.isoformat() if isinstance(v, date) else v


def conditions(node: Rule | Node) -> Iterator[TraitCondition | EventCondition | SegmentCondition]:
    """Every condition of the rule, depth first (referenced segments not expanded)."""
    if isinstance(node, Rule):
        node = node.root
    if isinstance(node, Group):
        for c in node.children:
            yield from conditions(c)
    elif isinstance(node, Not):
        yield from conditions(node.child)
    else:
        yield node
