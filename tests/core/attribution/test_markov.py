"""Markov removal effects against hand computation and brute-force walk enumeration."""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import numpy as np
import pandas as pd
import pytest

from core.attribution import aggregate_paths
from core.attribution.markov import build_chain, markov, removal_effects


def paths(rows: list[tuple[str, float, float]]):
    return aggregate_paths(pd.DataFrame(rows, columns=["path", "conversions", "nulls"]))


def test_hand_computed_example():
    # start→A 2, start→B 1; A→B 1, A→null 1; B→conv 2  ⇒  P(conv) = 2/3·1/2 + 1/3 = 2/3
    # without A: 1/3 (RE 0.5); without B: 0 (RE 1); credits of 2 conversions: A 2·0.5/1.5, B 2·1/1.5
    ps = paths([("A > B", 1, 0), ("A", 0, 1), ("B", 1, 0)])
    eff = removal_effects(ps)
    assert eff["conversion_probability"] == pytest.approx(2 / 3, rel=1e-12)
    assert eff["removal_conversions"].tolist() == pytest.approx([0.5, 1.0], rel=1e-12)
    conv, _, _ = markov(ps)
    assert conv.tolist() == pytest.approx([2 / 3, 4 / 3], rel=1e-12)


def brute_force(rows, order: int, removed: str | None) -> float:
    """P(conversion) summed over every walk of the chain, by state and step (to a depth where the tail is negligible).

    Walks are enumerated step by step from ``start``; memoising on (state, depth) keeps it polynomial."""
    counts: dict = defaultdict(lambda: defaultdict(float))
    for path, conv, null in rows:
        steps = [s.strip() for s in path.split(">")]
        states = [tuple(steps[max(0, i - order + 1): i + 1]) for i in range(len(steps))]
        prev = "start"
        for s in states:
            counts[prev][s] += conv + null
            prev = s
        counts[prev]["conv"] += conv
        counts[prev]["null"] += null
    prob = {s: {t: w / sum(out.values()) for t, w in out.items()} for s, out in counts.items()}

    @cache
    def walk(state, depth: int) -> float:
        if state == "conv":
            return 1.0
        if state == "null" or depth > 200 or (removed is not None and state != "start" and removed in state):
            return 0.0
        return sum(p * walk(nxt, depth + 1) for nxt, p in prob[state].items())

    return walk("start", 0)


ROWS_ACYCLIC = [("A > B > C", 3, 2), ("B > A", 1, 4), ("A > C", 2, 1), ("C", 1, 3), ("B > C > A", 2, 0),
                ("B", 0, 5)]
ROWS_CYCLIC = [("A > B > A", 2, 1), ("B > A > B > C", 1, 1), ("A > A", 1, 2), ("C > B", 1, 3), ("B", 0, 2)]


@pytest.mark.parametrize("rows", [ROWS_ACYCLIC, ROWS_CYCLIC], ids=["acyclic", "cyclic"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_removal_effects_match_brute_force(rows, order):
    ps = paths(rows)
    eff = removal_effects(ps, order=order)
    base = brute_force(rows, order, None)
    assert eff["conversion_probability"] == pytest.approx(base, rel=1e-9)
    for i, ch in enumerate(ps.channels):
        want = 1 - brute_force(rows, order, ch) / base
        assert eff["removal_conversions"][i] == pytest.approx(want, rel=1e-9, abs=1e-12), ch


def test_higher_order_states_are_tuples_of_last_channels():
    ps = paths([("A > B > C", 1, 0)])
    chain = build_chain(ps, order=2)
    named = {tuple(ps.channels[c] for c in s) for s in chain.states}
    assert named == {("A",), ("A", "B"), ("B", "C")}
    with pytest.raises(ValueError, match="order"):
        build_chain(ps, order=7)


def test_credits_sum_to_totals_and_revenue_uses_revenue_chain():
    ps = aggregate_paths(pd.DataFrame({"path": ["A > B", "A", "B", "B > C"], "conversions": [2, 1, 1, 1],
                                       "revenue": [200.0, 10.0, 10.0, 500.0], "nulls": [1, 3, 2, 0]}))
    conv, rev, _ = markov(ps)
    assert conv.sum() == pytest.approx(5, rel=1e-12) and rev.sum() == pytest.approx(720, rel=1e-12)
    # C only appears on the high-value path: its revenue share exceeds its conversion share
    c = ps.channels.index("C")
    assert rev[c] / 720 > conv[c] / 5
    assert np.all(conv >= 0)
