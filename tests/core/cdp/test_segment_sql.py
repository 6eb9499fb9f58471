"""Segment SQL vs the pandas reference on random rules over a random world; Trino rendering; values only ever as
parameters."""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot

from core.cdp.fields import EVENTS, FIELDS, available_fields
from core.cdp.segment_sql import FAST_WINDOWS, compile_members, compile_predicate
from core.cdp.segments import RuleError, parse_rule
from tests.core.cdp.segment_reference import Reference

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")  # the first day after the newest event
TODAY = AS_OF.date()
N_PEOPLE = 3000
FIRST = ["Anna", "anna", "ANNA", "José", "Zoë", "O'Brien", "Liam", "Noah", "Émile", "Jo", "Joanna", " Mia", ""]
LAST = ["Smith", "smith", "Müller", "Nguyen", "O'Neil", "Jones", "Li", "Garcia"]
CITIES = ["London", "london", "New York", "Paris", "São Paulo", "Zürich", "new york"]
DOMAINS = ["gmail.com", "Example.COM", "yahoo.co.uk", "growth.io"]
STATUSES = ["active", "paused", "cancelled", "none", "Active"]
SOURCES = ["shopify", "klaviyo", "ga4", "gorgias", "recharge"]
PRODUCTS = ["Retinol Night Cream", "retinol night cream", "Vitamin C Serum", "SPF 50", "Hyaluronic Toner",
            "Night Oil"]
CAMPAIGNS = ["Spring Sale", "spring sale", "Welcome", "Newsletter #12", "Black Friday"]
EVENT_SOURCES = {"order": ["shopify"], "email_opened": ["klaviyo"], "email_clicked": ["klaviyo"],
                 "email_received": ["klaviyo"], "page_view": ["ga4"], "product_viewed": ["ga4", "shopify"],
                 "subscription_created": ["recharge"], "ticket_created": ["gorgias"]}
HAS_PRODUCT = {"order", "product_viewed", "subscription_created"}
INJECTION = "x'); DROP TABLE p; --"


# the world ----------------------------------------------------------------------------------------------------


def _nulls(rng, values, share=0.1):
    s = pd.Series(values).astype(object)
    s[rng.random(len(s)) < share] = None
    return s


def _times(rng, n, lo_days, hi_days):
    """Timestamps between as_of - hi_days and as_of - lo_days, a third of them exactly at midnight."""
    days = rng.integers(lo_days, hi_days + 1, n)
    secs = np.where(rng.random(n) < 0.33, 0, rng.integers(0, 86400, n))
    return AS_OF - pd.to_timedelta(days, unit="D") + pd.to_timedelta(secs, unit="s")


def _profiles(rng) -> pd.DataFrame:
    n = N_PEOPLE
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    df = pd.DataFrame({"person_id": [f"p{i:05d}" for i in range(n)]})
    df["first_name"] = _nulls(rng, first)
    df["last_name"] = _nulls(rng, last)
    emails = [f"{a.strip()}.{b}{i}@{rng.choice(DOMAINS)}" for i, (a, b) in enumerate(zip(first, last, strict=True))]
    df["email"] = _nulls(rng, [e.lower() if i % 7 else e for i, e in enumerate(emails)])
    df["phone"] = _nulls(rng, [f"+1 555 01{i % 100:02d}" for i in range(n)])
    df["city"] = _nulls(rng, rng.choice(CITIES, n))
    orders = rng.integers(0, 6, n)
    df["lifetime_value"] = _nulls(rng, np.round(orders * rng.choice([25.0, 49.99, 120.5], n), 2)).astype(float)
    df["total_orders"] = pd.array(_nulls(rng, orders), dtype="Int64")
    df["avg_order_value"] = _nulls(rng, rng.choice([0.0, 25.0, 49.99, 120.5], n)).astype(float)
    for col, lo, hi in (("first_order_date", 200, 700), ("last_order_date", 0, 200), ("subscription_start_date",
                                                                                      0, 400),
                        ("first_seen", 300, 800), ("last_seen", 0, 60)):
        t = pd.Series(_times(rng, n, lo, hi))
        t[rng.random(n) < 0.1] = pd.NaT
        df[col] = t.astype("datetime64[us, UTC]")
    df["days_since_last_order"] = pd.array(_nulls(rng, rng.integers(0, 200, n)), dtype="Int64")
    df["subscription_status"] = _nulls(rng, rng.choice(STATUSES, n))
    df["subscription_mrr"] = _nulls(rng, rng.choice([0.0, 19.5, 30.0], n)).astype(float)
    df["email_engagement_score"] = pd.array(_nulls(rng, rng.choice([0, 10, 29, 30, 45, 59, 60, 80, 100], n)),
                                            dtype="Int64")
    for col in ("email_opens", "email_clicks", "support_tickets", "reviews", "referrals", "records", "events"):
        df[col] = pd.array(_nulls(rng, rng.integers(0, 5, n)), dtype="Int64")
    df["sources"] = _nulls(rng, [",".join(sorted(rng.choice(SOURCES, rng.integers(0, 4), replace=False)))
                                 for _ in range(n)])
    df["churn_risk"] = _nulls(rng, rng.choice([0.05, 0.25, 0.5, 0.7, 0.93], n)).astype(float)
    df["predicted_ltv"] = _nulls(rng, rng.choice([10.0, 150.0, 400.0], n)).astype(float)
    t = pd.Series(AS_OF + pd.to_timedelta(rng.integers(-10, 90, n), unit="D"))
    t[rng.random(n) < 0.1] = pd.NaT
    df["next_order_date"] = t.astype("datetime64[us, UTC]")
    return df


def _events(rng) -> pd.DataFrame:
    """A random event list: most people active, some never, a few people with no profile."""
    n = N_PEOPLE * 8
    people = np.array([f"p{i:05d}" for i in range(int(N_PEOPLE * 0.8))] + ["ghost1", "ghost2"])
    kinds = list(EVENT_SOURCES)
    ev = pd.DataFrame({"person_id": rng.choice(people, n), "event": rng.choice(kinds, n)})
    ev["source"] = [rng.choice(EVENT_SOURCES[e]) for e in ev["event"]]
    ev["time"] = _times(rng, n, 1, 500)
    near = rng.random(n) < 0.5  # half of them in the last 100 days, so the windows differ
    ev.loc[near, "time"] = _times(rng, int(near.sum()), 1, 100)
    ev["day"] = ev["time"].dt.date
    ev["products"] = [list(rng.choice(PRODUCTS, rng.integers(0, 4))) if e in HAS_PRODUCT else []
                      for e in ev["event"]]
    ev["campaign"] = [rng.choice(CAMPAIGNS) if e.startswith("email") and rng.random() < 0.8 else None
                      for e in ev["event"]]
    return ev


def _tables(ev: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """activity, activity_props and activity_windows from one event list, so they agree."""
    activity = ev.groupby(["person_id", "event", "source", "day"]).size().rename("n").reset_index()
    prod = ev[["person_id", "event", "day", "products"]].copy()
    prod["value"] = prod["products"].map(lambda xs: sorted(set(xs)))  # one per distinct title
    prod = prod.explode("value").dropna(subset=["value"]).assign(prop="product")
    camp = ev.loc[ev["campaign"].notna(), ["person_id", "event", "day", "campaign"]].rename(
        columns={"campaign": "value"}).assign(prop="campaign")
    props = pd.concat([prod[["person_id", "event", "day", "prop", "value"]], camp], ignore_index=True)
    props = props.groupby(["person_id", "event", "day", "prop", "value"]).size().rename("n").reset_index()
    w = ev[["person_id", "event", "day"]].copy()
    cols = {}
    for k in FAST_WINDOWS:
        cols[f"n_{k}"] = (w["day"] >= TODAY - timedelta(days=k)) & (w["day"] < TODAY)
    cols["n_all"] = pd.Series(True, index=w.index)
    windows = pd.concat([w[["person_id", "event"]], pd.DataFrame(cols).astype(int)], axis=1)
    windows = windows.groupby(["person_id", "event"]).sum().reset_index()
    return activity, props, windows


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(20240601)
    profiles = _profiles(rng)
    ev = _events(rng)
    activity, props, windows = _tables(ev)
    con = duckdb.connect()
    for name, df in (("profiles", profiles), ("activity", activity), ("activity_props", props),
                     ("activity_windows", windows)):
        con.register(f"{name}_df", df)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    for t in ("activity", "activity_props"):
        con.execute(f"ALTER TABLE {t} ALTER day TYPE DATE")
        con.execute(f"ALTER TABLE {t} ALTER n TYPE INTEGER")
    segments: dict[str, dict] = {}
    fields = available_fields(profiles.columns)
    ref = Reference(profiles, activity, props, windows, AS_OF, lookup=segments.get, fields=fields)
    gen = RuleGen(rng, profiles, fields, segments)
    while len(segments) < 6:  # stored segments, each may refer to those before it; none trivial
        rule = gen.rule(depth=2)
        if 0.05 < len(ref.members(rule)) / N_PEOPLE < 0.95:
            segments[f"s{len(segments)}"] = rule
            gen.segment_ids.append(f"s{len(segments) - 1}")
    return {"con": con, "ref": ref, "gen": gen, "segments": segments, "fields": fields, "profiles": profiles}


# random rules -------------------------------------------------------------------------------------------------


class RuleGen:
    def __init__(self, rng, profiles: pd.DataFrame, fields: dict, segments: dict) -> None:
        self.rng, self.p, self.fields, self.segments = rng, profiles, fields, segments
        self.segment_ids: list[str] = []

    def pick(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    def sample(self, col: str):
        s = self.p[col].dropna()
        return s.iloc[int(self.rng.integers(len(s)))]

    def text(self, options: list[str]) -> str:
        v = self.pick(options)
        r = self.rng.random()
        return v.upper() if r < 0.2 else v[: max(1, len(v) // 2)] if r < 0.4 else v

    def day(self, col: str | None = None) -> str:
        """A day, often one on which ``col`` has values (so the day boundaries matter)."""
        if col is not None and self.rng.random() < 0.6:
            return self.sample(col).date().isoformat()
        return (TODAY - timedelta(days=int(self.rng.integers(0, 600)))).isoformat()

    def days(self, col: str | None = None) -> list[str]:
        a, b = sorted([self.day(col), self.day(col)])
        return [a, b]

    def trait(self) -> dict:
        typ = self.pick(sorted({f.type for f in self.fields.values()}))  # every type as often
        f = self.pick([f for f in self.fields.values() if f.type == typ])
        op = self.pick(list(f.operators))
        out = {"field": f.name, "op": op}
        if op in ("is_set", "is_not_set"):
            return out
        if f.type in ("number", "integer", "money"):
            def one() -> float:  # mostly a value someone has, so eq / in / bounds hit
                if self.rng.random() < 0.3:
                    return round(float(self.rng.normal(50, 40)), 1)
                return float(self.sample(f.requires[0])) * (100 if f.name == "churn_risk" else 1)

            if op == "between":
                out["value"] = sorted([one(), one()])
            elif op in ("in", "not_in"):
                out["value"] = [one() for _ in range(int(self.rng.integers(1, 4)))]
            else:
                out["value"] = one()
        elif f.type == "date":
            if op in ("within_last", "more_than_ago"):
                out["value"] = int(self.pick([0, 1, 7, 30, 45, 200, 400]))
            elif op == "between":
                out["value"] = self.days(f.requires[0])
            else:
                out["value"] = self.day(f.requires[0])
        elif f.type == "boolean":
            out["value"] = bool(self.rng.random() < 0.5)
        elif f.type == "enum":
            vals = list(f.values)
            out["value"] = [self.pick(vals) for _ in range(2)] if op in ("in", "not_in") else self.pick(vals)
        elif f.type == "set":
            out["value"] = [self.text(SOURCES) for _ in range(2)] if op == "in" else self.text(SOURCES)
        else:
            col = {"name": "first_name", "location": "city"}.get(f.name, f.name)
            opts = [str(x) for x in self.p[col].dropna().unique() if str(x)][:50] or ["x"]
            out["value"] = [self.text(opts) for _ in range(2)] if op in ("in", "not_in") else self.text(opts)
        return out

    def behaviour(self) -> dict:
        event = self.pick(list(EVENT_SOURCES) + ["login"])
        out: dict = {"event": event}
        if self.rng.random() < 0.3:
            out["did"] = bool(self.rng.random() < 0.5)
        if self.rng.random() < 0.7:
            out["count"] = {"op": self.pick(["gte", "lte", "eq"]), "value": int(self.pick([0, 1, 1, 2, 3, 5]))}
        r = self.rng.random()
        if r < 0.5:
            out["window"] = {"last_days": int(self.pick([*FAST_WINDOWS, 1, 14, 45, 1000]))}
        elif r < 0.7:
            out["window"] = {"between": self.days()}
        elif r < 0.8:
            out["window"] = {"ever": True}
        if self.rng.random() < 0.45:
            prop = self.pick(list(EVENTS[event].properties))
            opts = {"product": PRODUCTS, "campaign": CAMPAIGNS, "source": SOURCES}[prop]
            op = self.pick(["eq", "ne", "in", "not_in", "contains", "starts_with"])
            value = [self.text(opts) for _ in range(2)] if op in ("in", "not_in") else self.text(opts)
            out["where"] = {"property": prop, "op": op, "value": value}
        return out

    def node(self, depth: int) -> dict:
        r = self.rng.random()
        if depth > 0 and r < 0.3:
            return self.rule(depth - 1)
        if r < 0.55:
            return self.trait()
        if r < 0.85 or not self.segment_ids:
            return self.behaviour()
        return {"segment": self.pick(self.segment_ids), "op": self.pick(["in", "not_in"])}

    def rule(self, depth: int = 3) -> dict:
        r = self.rng.random()
        if r < 0.15:
            return {"not": self.node(depth)}
        kind = "all" if r < 0.6 else "any"
        return {kind: [self.node(depth) for _ in range(int(self.rng.integers(0, 5)))]}


def _run(world, rule: dict) -> set[str]:
    q = compile_members(rule, world["fields"], AS_OF, world["segments"].get)
    assert INJECTION not in q.sql
    return {r[0] for r in world["con"].execute(q.sql, q.params).fetchall()}


# tests --------------------------------------------------------------------------------------------------------


def test_random_rules_match_the_reference(world):
    gen, ref = world["gen"], world["ref"]
    sizes = []
    for i in range(320):
        rule = gen.rule(depth=3)
        got = _run(world, rule)
        want = ref.members(rule)
        assert got == want, f"rule {i}: {json.dumps(rule)}\nonly SQL: {sorted(got - want)[:5]}, " \
                            f"only reference: {sorted(want - got)[:5]}"
        sizes.append(len(want))
        sql = compile_members(rule, world["fields"], AS_OF, world["segments"].get, dialect="trino").sql
        sqlglot.parse_one(sql, read="trino")
    sizes = np.array(sizes)
    # the rules are not trivial: many match some but not all people
    assert ((sizes > 0) & (sizes < N_PEOPLE)).mean() > 0.4


def test_random_conditions_match_the_reference(world):
    """One random condition at a time (plain and negated), where no other condition can hide a difference."""
    gen, ref = world["gen"], world["ref"]
    for i in range(400):
        cond = gen.trait() if i % 2 else gen.behaviour()
        for rule in ({"all": [cond]}, {"not": cond}):
            got, want = _run(world, rule), ref.members(rule)
            assert got == want, f"condition {i}: {json.dumps(rule)}\nonly SQL: {sorted(got - want)[:5]}, " \
                                f"only reference: {sorted(want - got)[:5]}"


def _every_operator() -> list[dict]:
    """One condition for every field and operator, every count op, window kind and where filter."""
    out = []
    for f in FIELDS:
        for op in f.operators:
            c: dict = {"field": f.name, "op": op}
            if op not in ("is_set", "is_not_set"):
                if f.type in ("number", "integer", "money"):
                    c["value"] = [1, 2] if op in ("between", "in", "not_in") else 3
                elif f.type == "date":
                    c["value"] = 30 if op in ("within_last", "more_than_ago") else \
                        ["2024-01-01", "2024-02-01"] if op == "between" else "2024-03-01"
                elif f.type == "boolean":
                    c["value"] = True
                elif f.type == "enum":
                    c["value"] = list(f.values[:2]) if op in ("in", "not_in") else f.values[0]
                elif f.type == "set":
                    c["value"] = ["shopify", INJECTION.replace(",", "")] if op == "in" else INJECTION.replace(",", "")
                else:
                    c["value"] = [INJECTION, "b"] if op in ("in", "not_in") else INJECTION
            out.append(c)
    windows = [None, {"ever": True}, {"last_days": 30}, {"last_days": 45}, {"between": ["2024-01-01", "2024-02-01"]}]
    for cop in ("gte", "lte", "eq"):
        for k in (0, 1, 3):
            for w in windows:
                for did in (True, False):
                    c = {"event": "order", "did": did, "count": {"op": cop, "value": k}}
                    if w:
                        c["window"] = w
                    out.append(c)
    for prop in ("product", "source"):
        for op in ("eq", "ne", "in", "not_in", "contains", "starts_with"):
            out.append({"event": "order", "window": {"last_days": 7}, "where": {
                "property": prop, "op": op, "value": [INJECTION, "b"] if op in ("in", "not_in") else INJECTION}})
    out.append({"event": "email_opened", "where": {"property": "campaign", "op": "eq", "value": INJECTION}})
    return out


def test_every_operator_renders_for_trino_and_duckdb(world):
    conds = _every_operator()
    for chunk in (conds[i:i + 95] for i in range(0, len(conds), 95)):  # at most 200 conditions a rule
        rule = {"any": [{"not": {"all": chunk}}, *chunk, {"segment": "s5", "op": "not_in"}]}
        for dialect in ("trino", "duckdb"):
            q = compile_members(rule, FIELDS, AS_OF, world["segments"].get, dialect=dialect)
            assert INJECTION not in q.sql and "DROP" not in q.sql
            assert q.sql.count("?") == len(q.params)
            assert (INJECTION in q.params) == (INJECTION in json.dumps(chunk))
            sqlglot.parse_one(q.sql, read=dialect)
    for c in conds:  # one at a time, so a bad rendering names its condition
        q = compile_predicate({"all": [c]}, FIELDS, AS_OF, dialect="trino")
        sqlglot.parse_one(q.sql, read="trino")
    # and every operator runs on DuckDB against the reference
    fields = world["fields"]
    for c in conds:
        if c.get("field") in fields or "event" in c:
            rule = {"all": [c]}
            assert _run(world, rule) == world["ref"].members(rule), json.dumps(c)


def test_values_are_parameters_in_order(world):
    rule = {"all": [{"field": "email", "op": "eq", "value": INJECTION},
                    {"field": "lifetime_value", "op": "between", "value": [10, 20]},
                    {"event": "order", "where": {"property": "product", "op": "in", "value": ["a'b", INJECTION]}}]}
    q = compile_members(rule, FIELDS, AS_OF, None)
    assert q.sql.startswith("SELECT p.person_id FROM profiles AS p WHERE ")
    assert INJECTION not in q.sql and "a'b" not in q.sql
    assert q.params == [INJECTION, 10, 20, "order", "product", "a'b", INJECTION]
    world["con"].execute(q.sql, q.params).fetchall()
    assert world["con"].execute("SELECT count(*) FROM profiles").fetchone()[0] == N_PEOPLE


def test_as_of_and_day_boundaries_are_parameters():
    q = compile_predicate({"all": [{"field": "last_order_date", "op": "within_last", "value": 30},
                                   {"event": "order", "window": {"last_days": 14}}]}, FIELDS, AS_OF)
    assert "2024" not in q.sql and "INTERVAL" not in q.sql.upper()
    assert q.params[0] == AS_OF.to_pydatetime() - timedelta(days=30)
    assert q.params[-2:] == [TODAY - timedelta(days=14), TODAY]


def test_fast_path_reads_activity_windows_and_the_rest_daily_rows():
    def sql(c):
        return compile_predicate({"all": [c]}, FIELDS, AS_OF).sql
    assert "activity_windows" in sql({"event": "order", "window": {"last_days": 30}})
    assert "n_all" in sql({"event": "order"})
    assert "FROM activity AS" in sql({"event": "order", "window": {"last_days": 31}})
    assert "FROM activity AS" in sql({"event": "order", "where": {"property": "source", "op": "eq", "value": "x"}})
    assert "activity_props" in sql({"event": "order", "where": {"property": "product", "op": "eq", "value": "x"}})
    # those who never did it match "at most", "exactly 0" and "did not" without a scan of everyone
    for c in ({"event": "order", "count": {"op": "lte", "value": 2}}, {"event": "order", "did": False},
              {"event": "order", "count": {"op": "eq", "value": 0}}):
        assert "NOT p.person_id IN (SELECT" in sql(c)


def test_segment_references_compile_inline_and_cycles_are_refused(world):
    stored = {"a": {"all": [{"field": "lifetime_value", "op": "gt", "value": 100}]},
              "b": {"any": [{"segment": "a", "op": "in"}, {"event": "order", "count": {"op": "gte", "value": 3}}]}}
    q = compile_predicate({"all": [{"segment": "b", "op": "not_in"}]}, FIELDS, AS_OF, stored.get)
    assert "lifetime_value" in q.sql and q.params[0] == 100
    stored["a"] = {"all": [{"segment": "b", "op": "in"}]}  # a stored cycle (saved before the check existed)
    with pytest.raises(RuleError, match="refers back to itself"):
        compile_predicate({"all": [{"segment": "b", "op": "in"}]}, FIELDS, AS_OF, stored.get)
    with pytest.raises(RuleError, match="unknown segment 'zz'"):
        compile_predicate(parse_rule({"all": [{"segment": "zz"}]}), FIELDS, AS_OF, stored.get)


def test_empty_groups_and_missing_columns(world):
    assert len(_run(world, {"all": []})) == N_PEOPLE
    assert _run(world, {"any": []}) == set()
    assert len(_run(world, {"not": {"any": []}})) == N_PEOPLE
    # a prediction field is refused when the profile table has no such column
    base = available_fields([c for c in world["profiles"].columns if c != "churn_risk"])
    with pytest.raises(RuleError, match="not available"):
        compile_members({"all": [{"field": "churn_risk", "op": "gt", "value": 50}]}, base, AS_OF)
