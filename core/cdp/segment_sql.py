"""Segment rules compiled to one parameterised SQL statement over the profile and activity tables, for DuckDB
and Trino (Athena).

The statement is built as sqlglot expressions; every value of the rule (and the day boundaries derived from
``as_of``) is a ``?`` placeholder whose value is in ``params``, in order, so nothing a user typed is ever part of
the SQL text. Tables: ``profiles`` (alias ``p``), ``activity`` (daily counts per person, event, source and day),
``activity_props`` (daily counts per property value) and ``activity_windows`` (counts in the usual last-K-days
windows and ever, the fast path for behaviours without a property filter).

Null semantics: a comparison with a null trait is false, and ``not`` is plain negation, so below a ``not`` every
comparison is made two-valued (``COALESCE(..., FALSE)``). Behaviours test ``p.person_id IN (people whose count
passes)``; a count that people without any event satisfy (``lte``, ``eq 0``, ``did: false``) is written as ``NOT
p.person_id IN (people whose count is above it)`` so those people match without a scan of everyone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from core.cdp.fields import Field
from core.cdp.segments import (
    MAX_REFERENCE_DEPTH,
    EventCondition,
    Group,
    Lookup,
    Not,
    Rule,
    RuleError,
    SegmentCondition,
    TraitCondition,
    Where,
    as_fields,
    parse_rule,
)

__all__ = ["CompiledQuery", "compile_members", "compile_predicate", "FAST_WINDOWS",
           "MAX_EXPANDED_CONDITIONS", "PROFILE_ALIAS"]

PROFILE_ALIAS = "p"
#: windows answered by the ``activity_windows`` columns ``n_<K>`` (and ``n_all`` for ever)
FAST_WINDOWS = (7, 30, 60, 90, 180, 365)
#: conditions after referenced segments are expanded inline (a guard against references repeated in depth)
MAX_EXPANDED_CONDITIONS = 5000
_MARK = "glp"  # internal placeholder names, replaced by ``?`` once the SQL is rendered
_MARK_RE = re.compile(rf"[:$@]{_MARK}(\d+)\b")
Catalogue = Mapping[str, Field] | Iterable[Field] | None


@dataclass(frozen=True)
class CompiledQuery:
    """SQL text with ``?`` placeholders and their values, in order."""

    sql: str
    params: list[Any] = field(default_factory=list)


def _utc(as_of: Any) -> datetime:
    if hasattr(as_of, "to_pydatetime"):  # a pandas Timestamp
        as_of = as_of.to_pydatetime()
    ts = as_of if isinstance(as_of, datetime) else datetime.fromisoformat(str(as_of))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def _ceil_day(ts: datetime) -> date:
    """The first day starting at or after ``ts``."""
    return ts.date() if ts.timetz() == time(0, tzinfo=UTC) else ts.date() + timedelta(days=1)


@functools.lru_cache(maxsize=256)
def _column_expr(column_sql: str) -> exp.Expression:
    """A field's SQL (DuckDB syntax), every column qualified with the profile alias."""
    tree = sqlglot.parse_one(column_sql, read="duckdb")
    for col in tree.find_all(exp.Column):
        col.set("table", exp.to_identifier(PROFILE_ALIAS))
    return tree if isinstance(tree, exp.Column | exp.Func) else exp.paren(tree, copy=False)


def _lower(e: exp.Expression) -> exp.Expression:
    return exp.Lower(this=e)


def _strpos(haystack: exp.Expression, needle: exp.Expression) -> exp.Expression:
    return exp.StrPosition(this=haystack, substr=needle)


def _comma(e: exp.Expression) -> exp.Expression:
    """``',' || e || ','``: a comma-joined set (or one element) with delimiters at both ends."""
    return exp.DPipe(this=exp.DPipe(this=exp.Literal.string(","), expression=e), expression=exp.Literal.string(","))


class _Compiler:
    def __init__(self, fields: dict[str, Field], as_of: datetime, lookup: Lookup | None) -> None:
        self.fields, self.as_of, self.lookup = fields, as_of, lookup
        self.params: list[Any] = []
        self.expanding: list[str] = []  # segment ids being expanded (cycle guard)
        self.n_conditions = 0

    def param(self, value: Any) -> exp.Placeholder:
        self.params.append(value)
        return exp.Placeholder(this=f"{_MARK}{len(self.params) - 1}")

    def node(self, n: Any, path: str, strict: bool) -> exp.Expression:
        """``strict``: below a negation, where the result must be two-valued (never NULL)."""
        if isinstance(n, Group):
            parts = [self.node(c, f"{path}.{n.kind}[{i}]", strict) for i, c in enumerate(n.children)]
            if not parts:
                return exp.true() if n.kind == "all" else exp.false()
            combine = exp.and_ if n.kind == "all" else exp.or_
            return exp.paren(combine(*parts, copy=False), copy=False) if len(parts) > 1 else parts[0]
        if isinstance(n, Not):
            return exp.not_(exp.paren(self.node(n.child, f"{path}.not", True), copy=False), copy=False)
        self.n_conditions += 1
        if self.n_conditions > MAX_EXPANDED_CONDITIONS:
            raise RuleError(path, f"with the segments it refers to, the rule has more than "
                                  f"{MAX_EXPANDED_CONDITIONS} conditions")
        if isinstance(n, TraitCondition):
            e, nullable = self.trait(n, path)
            return exp.Coalesce(this=e, expressions=[exp.false()]) if strict and nullable else e
        if isinstance(n, EventCondition):
            return self.behaviour(n)
        if isinstance(n, SegmentCondition):
            return self.segment(n, path, strict)
        raise TypeError(f"not a rule node: {n!r}")

    # traits -----------------------------------------------------------------------------------------------------

    def trait(self, c: TraitCondition, path: str) -> tuple[exp.Expression, bool]:
        """The comparison and whether it can be NULL (a null trait)."""
        f = self.fields.get(c.field)
        if f is None:
            raise RuleError(f"{path}.field", f"unknown field '{c.field}'")
        col = _column_expr(f.column_sql).copy()
        op, v = c.op, c.value
        text = f.type in ("string", "enum", "set")
        if op == "is_set":
            return (exp.NEQ(this=col, expression=exp.Literal.string("")), True) if text else \
                (exp.not_(exp.Is(this=col, expression=exp.null())), False)
        if op == "is_not_set":
            if text:
                return exp.not_(exp.Coalesce(this=exp.NEQ(this=col, expression=exp.Literal.string("")),
                                             expressions=[exp.false()])), False
            return exp.Is(this=col, expression=exp.null()), False
        if f.type == "set":
            return self.set_op(col, op, v), True
        if f.type == "date":
            return self.date_op(col, op, v), True
        if text:
            return self.text_op(_lower(col), op, v), True
        return self.value_op(col, op, v), True

    def value_op(self, col: exp.Expression, op: str, v: Any) -> exp.Expression:
        """Numbers and booleans."""
        if op == "between":
            return exp.Between(this=col, low=self.param(v[0]), high=self.param(v[1]))
        if op in ("in", "not_in"):
            e = exp.In(this=col, expressions=[self.param(x) for x in v])
            return e if op == "in" else exp.not_(e)
        cmp = {"eq": exp.EQ, "ne": exp.NEQ, "lt": exp.LT, "lte": exp.LTE, "gt": exp.GT, "gte": exp.GTE}[op]
        return cmp(this=col, expression=self.param(v))

    def text_op(self, low: exp.Expression, op: str, v: Any) -> exp.Expression:
        """Case-insensitive text tests on ``low`` (an already lower-cased expression)."""
        if op in ("in", "not_in"):
            e = exp.In(this=low, expressions=[_lower(self.param(x)) for x in v])
            return e if op == "in" else exp.not_(e)
        val = _lower(self.param(v))
        if op == "eq":
            return exp.EQ(this=low, expression=val)
        if op == "ne":
            return exp.NEQ(this=low, expression=val)
        if op == "contains":
            return exp.GT(this=_strpos(low, val), expression=exp.Literal.number(0))
        if op == "not_contains":
            return exp.EQ(this=_strpos(low, val), expression=exp.Literal.number(0))
        if op == "starts_with":
            return exp.StartsWith(this=low, expression=val)
        raise ValueError(f"no text operator {op!r}")

    def set_op(self, col: exp.Expression, op: str, v: Any) -> exp.Expression:
        def has(x: str) -> exp.Expression:
            found = _strpos(_comma(_lower(col.copy())), _comma(_lower(self.param(x))))
            return exp.GT(this=found, expression=exp.Literal.number(0))

        if op == "contains":
            return has(v)
        if op == "not_contains":
            return exp.not_(has(v))
        return exp.paren(exp.or_(*[has(x) for x in v]), copy=False)  # in: contains any of the list

    def date_op(self, col: exp.Expression, op: str, v: Any) -> exp.Expression:
        """Timestamps against UTC day boundaries (as parameters)."""
        def since(ts: datetime) -> exp.Expression:
            return exp.GTE(this=col.copy(), expression=self.param(ts))

        def until(ts: datetime) -> exp.Expression:
            return exp.LT(this=col.copy(), expression=self.param(ts))

        if op == "before":
            return until(_day_start(v))
        if op == "after":
            return since(_day_start(v + timedelta(days=1)))
        if op == "between":
            return exp.and_(since(_day_start(v[0])), until(_day_start(v[1] + timedelta(days=1))))
        if op == "within_last":
            return since(self.as_of - timedelta(days=v))
        if op == "more_than_ago":
            return until(self.as_of - timedelta(days=v))
        raise ValueError(f"no date operator {op!r}")

    # behaviours -------------------------------------------------------------------------------------------------

    def behaviour(self, c: EventCondition) -> exp.Expression:
        op, k = c.count.op, c.count.value
        if op == "gte" and k == 0:
            e: exp.Expression = exp.true()
        elif op == "gte" or (op == "eq" and k > 0):
            e = self.member(self.people(c, "=" if op == "eq" else ">=", k))
        else:  # lte k, eq 0: everyone but the people with more
            e = exp.not_(self.member(self.people(c, ">=", k + 1)))
        return e if c.did else exp.not_(exp.paren(e, copy=False) if isinstance(e, exp.Not) else e)

    @staticmethod
    def member(q: exp.Select) -> exp.Expression:
        return exp.In(this=exp.column("person_id", PROFILE_ALIAS), query=exp.Subquery(this=q))

    def people(self, c: EventCondition, cmp: str, k: int) -> exp.Select:
        """The people whose count of ``c`` (ignoring ``c.count``) is ``>= k`` or ``= k`` (k >= 1)."""
        w, where = c.window, c.where
        if where is None and (w.kind == "ever" or (w.kind == "last_days" and w.days in FAST_WINDOWS)):
            n = exp.column("n_all" if w.kind == "ever" else f"n_{w.days}", "w")
            test = (exp.EQ if cmp == "=" else exp.GTE)(this=n, expression=self.param(k))
            return self.select("activity_windows", "w", [self.event(c, "w"), test])
        if where is None or where.property == "source":
            table, alias = "activity", "a"
            filters = [self.event(c, alias)]
            if where is not None:
                filters.append(self.where(exp.column("source", alias), where))
        else:
            table, alias = "activity_props", "ap"
            filters = [self.event(c, alias), exp.EQ(this=exp.column("prop", alias),
                                                    expression=self.param(where.property))]
            filters.append(self.where(exp.column("value", alias), where))
        day = exp.column("day", alias)
        if w.kind == "last_days":
            hi = _ceil_day(self.as_of)
            lo = _ceil_day(self.as_of - timedelta(days=w.days))
            filters += [exp.GTE(this=day, expression=self.param(lo)), exp.LT(this=day.copy(),
                                                                               expression=self.param(hi))]
        elif w.kind == "between":
            filters.append(exp.Between(this=day, low=self.param(w.start), high=self.param(w.end)))
        n = exp.column("n", alias)
        if cmp == ">=" and k == 1:  # anyone with a row: no aggregation
            return self.select(table, alias, [*filters, exp.GT(this=n, expression=exp.Literal.number(0))])
        total = exp.Sum(this=n)
        having = (exp.EQ if cmp == "=" else exp.GTE)(this=total, expression=self.param(k))
        return self.select(table, alias, filters).group_by(exp.column("person_id", alias), copy=False) \
            .having(having, copy=False)

    def event(self, c: EventCondition, alias: str) -> exp.Expression:
        return exp.EQ(this=exp.column("event", alias), expression=self.param(c.event))

    @staticmethod
    def select(table: str, alias: str, filters: list[exp.Expression]) -> exp.Select:
        pid = exp.column("person_id", alias)
        cond = exp.and_(*filters, exp.not_(exp.Is(this=pid.copy(), expression=exp.null())), copy=False)
        return exp.select(pid).from_(exp.alias_(exp.to_table(table), alias, table=True)).where(cond, copy=False)

    def where(self, col: exp.Expression, w: Where) -> exp.Expression:
        return self.text_op(_lower(col), w.op, w.value)

    # segment references -----------------------------------------------------------------------------------------

    def segment(self, c: SegmentCondition, path: str, strict: bool) -> exp.Expression:
        spath = f"{path}.segment"
        if c.segment in self.expanding:
            raise RuleError(spath, f"segment '{c.segment}' refers back to itself")
        if len(self.expanding) >= MAX_REFERENCE_DEPTH:
            raise RuleError(spath, f"segments refer to each other more than {MAX_REFERENCE_DEPTH} levels deep")
        found = self.lookup(c.segment) if self.lookup is not None else None
        if found is None:
            raise RuleError(spath, f"unknown segment '{c.segment}'")
        try:
            sub = parse_rule(found, fields=self.fields)
        except RuleError as e:
            raise RuleError(spath, f"segment '{c.segment}' has an invalid rule ({e})") from e
        outermost = not self.expanding  # errors deeper down are reported at the reference in the rule itself
        self.expanding.append(c.segment)
        try:
            inner = self.node(sub.root, "rules", strict or c.op == "not_in")
        except RuleError as e:
            if not outermost:
                raise
            raise RuleError(spath, f"segment '{c.segment}': {e}") from e
        finally:
            self.expanding.pop()
        return exp.paren(inner, copy=False) if c.op == "in" else exp.not_(exp.paren(inner, copy=False))


def _predicate(rule: Rule | dict, catalogue: Catalogue, as_of: Any, lookup: Lookup | None,
               columns: Iterable[str] | None) -> tuple[exp.Expression, list[Any]]:
    """The rule as a sqlglot boolean expression over ``profiles AS p`` with numbered placeholders, and their
    values; :func:`_render` turns the numbers into ``?`` in the order they appear in the SQL text."""
    if as_of is None:
        raise ValueError("as_of is required: relative windows are counted back from it")
    fields = as_fields(catalogue, columns)
    if not isinstance(rule, Rule):
        rule = parse_rule(rule, fields=fields, lookup=lookup)
    comp = _Compiler(fields, _utc(as_of), lookup)
    return comp.node(rule.root, "rules", False), comp.params


def _render(tree: exp.Expression, params: list[Any], dialect: str) -> CompiledQuery:
    sql = tree.sql(dialect=dialect)
    ordered = [params[int(m.group(1))] for m in _MARK_RE.finditer(sql)]
    return CompiledQuery(_MARK_RE.sub("?", sql), ordered)


def compile_predicate(rule: Rule | dict, catalogue: Catalogue = None, as_of: Any = None,
                      lookup: Lookup | None = None, dialect: str = "duckdb", *,
                      columns: Iterable[str] | None = None) -> CompiledQuery:
    """The WHERE condition of the rule over ``profiles AS p`` (the caller wraps it, e.g. ``SELECT count(*) FROM
    profiles AS p WHERE <sql>``). ``catalogue``: the fields the rule may use (default: all), narrowed to those a
    profile table with ``columns`` can answer when given; ``as_of``: "now" (required, UTC); ``lookup``: segment
    id -> stored rule JSON, for segment references (compiled inline)."""
    tree, params = _predicate(rule, catalogue, as_of, lookup, columns)
    return _render(tree, params, dialect)


def compile_members(rule: Rule | dict, catalogue: Catalogue = None, as_of: Any = None,
                    lookup: Lookup | None = None, dialect: str = "duckdb", *,
                    columns: Iterable[str] | None = None) -> CompiledQuery:
    """``SELECT p.person_id FROM profiles AS p WHERE <the rule>`` with its parameters (arguments as for
    :func:`compile_predicate`)."""
    tree, params = _predicate(rule, catalogue, as_of, lookup, columns)
    query = exp.select(exp.column("person_id", PROFILE_ALIAS)).from_(
        exp.alias_(exp.to_table("profiles"), PROFILE_ALIAS, table=True)).where(tree, copy=False)
    return _render(query, params, dialect)
