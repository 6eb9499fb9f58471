"""Rule-based models on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.attribution import aggregate_journeys, aggregate_paths
from core.attribution.heuristic import (
    first_click,
    last_click,
    last_non_direct,
    linear,
    position_based,
    time_decay,
)


def credit(ps, result) -> dict[str, tuple[float, float]]:
    conv, rev = result
    return {c: (round(float(conv[i]), 9), round(float(rev[i]), 6)) for i, c in enumerate(ps.channels)}


def test_first_and_last_click(tiny):
    ps = aggregate_journeys(tiny)
    # converting journeys: a = Meta > Email > Direct ($100), c = Direct ($50)
    assert credit(ps, first_click(ps)) == {"Direct": (1, 50), "Email": (0, 0), "Google": (0, 0), "Meta": (1, 100)}
    assert credit(ps, last_click(ps)) == {"Direct": (2, 150), "Email": (0, 0), "Google": (0, 0), "Meta": (0, 0)}


def test_last_non_direct_skips_direct_unless_only_touch(tiny):
    ps = aggregate_journeys(tiny)
    # a: Direct skipped → Email; c: only Direct → Direct keeps it
    assert credit(ps, last_non_direct(ps)) == {"Direct": (1, 50), "Email": (1, 100), "Google": (0, 0),
                                               "Meta": (0, 0)}


def test_linear(tiny):
    ps = aggregate_journeys(tiny)
    got = credit(ps, linear(ps))
    assert got["Meta"] == (round(1 / 3, 9), round(100 / 3, 6))
    assert got["Email"] == (round(1 / 3, 9), round(100 / 3, 6))
    assert got["Direct"] == (round(1 + 1 / 3, 9), round(50 + 100 / 3, 6))


def test_linear_counts_repeated_channel_twice():
    ps = aggregate_paths(pd.DataFrame({"path": ["A > B > A"], "conversions": [3], "revenue": [30.0]}))
    conv, rev = linear(ps)
    assert conv.tolist() == pytest.approx([2.0, 1.0]) and rev.tolist() == pytest.approx([20.0, 10.0])


def test_time_decay_half_life(tiny):
    ps = aggregate_journeys(tiny)
    # journey a: Meta 7 days, Email 3 days, Direct 0 days before the purchase; half-life 7 days
    w = np.array([0.5, 0.5 ** (3 / 7), 1.0])
    share = w / w.sum()
    conv, rev = time_decay(ps, half_life_days=7)
    got = dict(zip(ps.channels, conv, strict=True))
    assert got["Meta"] == pytest.approx(share[0], rel=1e-12)
    assert got["Email"] == pytest.approx(share[1], rel=1e-12)
    assert got["Direct"] == pytest.approx(share[2] + 1, rel=1e-12)
    assert dict(zip(ps.channels, rev, strict=True))["Meta"] == pytest.approx(100 * share[0], rel=1e-12)
    # a longer half-life moves credit toward the early touches
    assert dict(zip(ps.channels, time_decay(ps, 30)[0], strict=True))["Meta"] > got["Meta"]


def test_time_decay_on_paths_uses_one_day_steps():
    ps = aggregate_paths(pd.DataFrame({"path": ["A > B"], "conversions": [1]}))
    conv, _ = time_decay(ps, half_life_days=1)
    assert conv.tolist() == pytest.approx([1 / 3, 2 / 3])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("A", {"A": 1.0}),
        ("A > B", {"A": 0.5, "B": 0.5}),
        ("A > B > C", {"A": 0.4, "B": 0.2, "C": 0.4}),
        ("A > B > C > D", {"A": 0.4, "B": 0.1, "C": 0.1, "D": 0.4}),
    ],
)
def test_position_based_40_20_40(path, expected):
    ps = aggregate_paths(pd.DataFrame({"path": [path], "conversions": [1], "revenue": [10.0]}))
    conv, rev = position_based(ps)
    assert dict(zip(ps.channels, conv.tolist(), strict=True)) == pytest.approx(expected)
    assert rev.sum() == pytest.approx(10.0)


def test_position_based_configurable():
    ps = aggregate_paths(pd.DataFrame({"path": ["A > B > C", "A > B"], "conversions": [1, 1]}))
    conv, _ = position_based(ps, first=0.3, last=0.5)
    # A: 0.3 + 0.3/0.8; B: 0.2 + 0.5/0.8; C: 0.5
    assert conv.tolist() == pytest.approx([0.3 + 0.375, 0.2 + 0.625, 0.5])
    with pytest.raises(ValueError, match="first \\+ last"):
        position_based(ps, first=0.7, last=0.5)
