"""A plain pandas evaluator of segment rules over the same tables as the SQL (profiles, activity, activity_props,
activity_windows), written from the rule semantics alone, to check the compiled SQL against.

Behaviours are always counted from the daily tables (``activity`` / ``activity_props``), so the SQL's fast path
over ``activity_windows`` is checked against the daily rows as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.cdp.fields import FIELD_BY_NAME
from core.cdp.segments import (
    EventCondition,
    Group,
    Not,
    Rule,
    SegmentCondition,
    TraitCondition,
    parse_rule,
)


def _name(p: pd.DataFrame) -> pd.Series:
    def one(first: Any, last: Any) -> Any:
        parts = [x for x in (first, last) if isinstance(x, str)]
        s = " ".join(parts).strip(" ")
        return s or None
    return pd.Series([one(f, la) for f, la in zip(p["first_name"], p["last_name"], strict=True)], index=p.index,
                     dtype=object)


def _level(p: pd.DataFrame) -> pd.Series:
    s = p["email_engagement_score"].astype("Float64")
    out = pd.Series([None] * len(p), index=p.index, dtype=object)
    out[(s < 30).fillna(False).to_numpy(bool)] = "Low"
    out[((s >= 30) & (s < 60)).fillna(False).to_numpy(bool)] = "Medium"
    out[(s >= 60).fillna(False).to_numpy(bool)] = "High"
    return out


def _flag(s: pd.Series) -> pd.Series:
    return s.astype("boolean")


#: derived fields, computed here on their own terms (not from the catalogue's SQL)
DERIVED: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "name": _name,
    "location": lambda p: p["city"],
    "repeat_customer": lambda p: _flag(p["total_orders"].astype("Float64") >= 2),
    "active_subscriber": lambda p: _flag(p["subscription_status"].astype("string").str.lower() == "active"),
    "email_engagement": _level,
    "churn_risk": lambda p: p["churn_risk"].astype(float) * 100,
}


def _mask(s: Any) -> np.ndarray:
    """A boolean array with missing (NA) read as False."""
    if isinstance(s, pd.Series):
        return s.astype("boolean").fillna(False).to_numpy(dtype=bool)
    return np.asarray(s, dtype=bool)


class Reference:
    """Evaluate rules: ``members(rule)`` is the set of person ids that match."""

    def __init__(self, profiles: pd.DataFrame, activity: pd.DataFrame, activity_props: pd.DataFrame,
                 activity_windows: pd.DataFrame | None, as_of: pd.Timestamp, lookup: Callable[[str], Any] = None,
                 fields: dict | None = None) -> None:
        self.p = profiles.reset_index(drop=True)
        self.activity, self.props = activity, activity_props
        self.windows = activity_windows  # not used: counts come from the daily tables
        self.as_of = pd.Timestamp(as_of)
        self.today = self.as_of.date()  # as_of is a UTC midnight: the first day after the data
        self.lookup = lookup
        self.fields = fields
        self.ids = self.p["person_id"].to_numpy(dtype=object)
        self.columns: dict[str, pd.Series] = {}
        self.lowered: dict[str, list[str]] = {}
        pos = {pid: i for i, pid in enumerate(self.ids)}
        # the daily rows per event (and property), as plain arrays: profile position, day, value, count
        self.daily: dict[tuple[str, str | None], tuple[np.ndarray, ...]] = {}
        for key, rows in activity.groupby("event"):
            self.daily[(key, None)] = self._arrays(rows, rows["source"], pos)
        for (ev, prop), rows in activity_props.groupby(["event", "prop"]):
            self.daily[(ev, prop)] = self._arrays(rows, rows["value"], pos)

    @staticmethod
    def _arrays(rows: pd.DataFrame, values: pd.Series, pos: dict) -> tuple[np.ndarray, ...]:
        where = np.array([pos.get(x, -1) for x in rows["person_id"]], dtype=np.int64)
        days = pd.to_datetime(rows["day"]).to_numpy(dtype="datetime64[D]")
        present = values.notna().to_numpy(bool)
        low = [v.lower() if ok else "" for v, ok in zip(values.astype(object), present, strict=True)]
        return where, days, present, low, rows["n"].to_numpy(dtype=np.int64)

    def members(self, rule: Rule | dict) -> set[str]:
        if not isinstance(rule, Rule):
            rule = parse_rule(rule, fields=self.fields)
        return set(self.ids[self.eval(rule.root)])

    def eval(self, n: Any) -> np.ndarray:
        if isinstance(n, Group):
            parts = [self.eval(c) for c in n.children]
            if n.kind == "all":
                return np.logical_and.reduce(parts) if parts else np.ones(len(self.p), bool)
            return np.logical_or.reduce(parts) if parts else np.zeros(len(self.p), bool)
        if isinstance(n, Not):
            return ~self.eval(n.child)
        if isinstance(n, TraitCondition):
            return self.trait(n)
        if isinstance(n, EventCondition):
            return self.behaviour(n)
        if isinstance(n, SegmentCondition):
            inner = self.eval(parse_rule(self.lookup(n.segment), fields=self.fields).root)
            return inner if n.op == "in" else ~inner
        raise TypeError(n)

    # traits

    def column(self, name: str) -> pd.Series:
        if name not in self.columns:
            self.columns[name] = DERIVED[name](self.p) if name in DERIVED else self.p[name]
        return self.columns[name]

    def trait(self, c: TraitCondition) -> np.ndarray:
        f = FIELD_BY_NAME[c.field]
        s = self.column(c.field)
        present = _mask(s.notna())
        if f.type in ("string", "enum", "set"):
            if c.field not in self.lowered:
                self.lowered[c.field] = [t.lower() if ok else "" for t, ok in zip(s.astype(object), present,
                                                                                   strict=True)]
            nonempty = present & _mask(s.astype(object) != "")
            if c.op == "is_set":
                return nonempty
            if c.op == "is_not_set":
                return ~nonempty
            return present & self.text(self.lowered[c.field], f.type, c.op, c.value)
        if c.op == "is_set":
            return present
        if c.op == "is_not_set":
            return ~present
        if f.type == "date":
            return present & self.date(pd.to_datetime(s, utc=True), c.op, c.value)
        if f.type == "boolean":
            return present & _mask(s.astype("boolean") == c.value)
        return present & self.number(s.astype(float), c.op, c.value)

    @staticmethod
    def number(x: pd.Series, op: str, v: Any) -> np.ndarray:
        if op == "between":
            return _mask((x >= v[0]) & (x <= v[1]))
        if op in ("in", "not_in"):
            hit = np.zeros(len(x), bool)
            for item in v:
                hit |= _mask(x == item)
            return hit if op == "in" else ~hit
        return _mask({"eq": x == v, "ne": x != v, "lt": x < v, "lte": x <= v, "gt": x > v, "gte": x >= v}[op])

    @staticmethod
    def text(low: list[str], typ: str, op: str, v: Any) -> np.ndarray:
        """Tests on lower-cased texts, only meaningful where the value is present (the caller masks the rest)."""
        if typ == "set":
            elements = [set(t.split(",")) for t in low]
            wanted = [v.lower()] if op in ("contains", "not_contains") else [x.lower() for x in v]
            hit = np.array([any(w in e for w in wanted) for e in elements], bool)
            return ~hit if op == "not_contains" else hit
        if op in ("in", "not_in"):
            options = {x.lower() for x in v}
            hit = np.array([t in options for t in low], bool)
            return hit if op == "in" else ~hit
        w = v.lower()
        if op == "eq":
            return np.array([t == w for t in low], bool)
        if op == "ne":
            return np.array([t != w for t in low], bool)
        if op == "contains":
            return np.array([w in t for t in low], bool)
        if op == "not_contains":
            return np.array([w not in t for t in low], bool)
        if op == "starts_with":
            return np.array([t.startswith(w) for t in low], bool)
        raise ValueError(op)

    def date(self, t: pd.Series, op: str, v: Any) -> np.ndarray:
        def start(d: Any) -> pd.Timestamp:
            return pd.Timestamp(d).tz_localize("UTC")

        if op == "before":
            return _mask(t < start(v))
        if op == "after":
            return _mask(t >= start(v) + pd.Timedelta(days=1))
        if op == "between":
            return _mask((t >= start(v[0])) & (t < start(v[1]) + pd.Timedelta(days=1)))
        if op == "within_last":
            return _mask(t >= self.as_of - pd.Timedelta(days=v))
        if op == "more_than_ago":
            return _mask(t < self.as_of - pd.Timedelta(days=v))
        raise ValueError(op)

    # behaviours

    def behaviour(self, c: EventCondition) -> np.ndarray:
        w = c.where
        key = (c.event, None if w is None or w.property == "source" else w.property)
        empty = (np.zeros(0, np.int64), np.zeros(0, "datetime64[D]"), np.zeros(0, bool), [], np.zeros(0, np.int64))
        where, days, present, low, n = self.daily.get(key, empty)
        keep = where >= 0
        if w is not None:
            keep &= present & self.text(low, "string", w.op, w.value)
        today = np.datetime64(self.today, "D")
        if c.window.kind == "last_days":
            keep &= (days >= today - np.timedelta64(c.window.days, "D")) & (days < today)
        elif c.window.kind == "between":
            keep &= (days >= np.datetime64(c.window.start, "D")) & (days <= np.datetime64(c.window.end, "D"))
        counts = np.bincount(where[keep], weights=n[keep], minlength=len(self.ids)).astype(np.int64)
        k = c.count.value
        hit = {"gte": counts >= k, "lte": counts <= k, "eq": counts == k}[c.count.op]
        return hit if c.did else ~hit
