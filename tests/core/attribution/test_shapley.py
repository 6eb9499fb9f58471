"""Simplified Shapley (Zhao et al. 2018) against explicit permutation averaging."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pandas as pd
import pytest

from core.attribution import aggregate_paths
from core.attribution.shapley import channel_set_masks, shapley, shapley_closed_form, shapley_coalitions


def test_hand_computed_two_channels():
    # v({A}) = 1, v({B}) = 0, v({A,B}) = 3 ⇒ φ_A = ½(1 − 0) + ½(3 − 0) = 2, φ_B = ½·0 + ½(3 − 1) = 1
    ps = aggregate_paths(pd.DataFrame({"path": ["A > B", "A", "B > A"], "conversions": [1, 1, 1]}))
    conv, _ = shapley(ps)
    assert conv.tolist() == pytest.approx([2.0, 1.0])


def permutation_shapley(rows, channels) -> dict[str, float]:
    sets = [(frozenset(s.strip() for s in p.split(">")), c) for p, c in rows]

    def v(coalition: set) -> float:
        return sum(c for s, c in sets if s <= coalition)

    phi = dict.fromkeys(channels, 0.0)
    orders = list(permutations(channels))
    for order in orders:
        seen: set = set()
        for ch in order:
            phi[ch] += v(seen | {ch}) - v(seen)
            seen.add(ch)
    return {ch: x / len(orders) for ch, x in phi.items()}


def test_matches_explicit_permutation_averaging():
    rows = [("A > B > C", 5), ("B > D", 3), ("A", 2), ("D > A > D", 4), ("C > B", 1), ("E > A > C > B", 2),
            ("E", 1), ("B > B", 6)]
    ps = aggregate_paths(pd.DataFrame(rows, columns=["path", "conversions"]))
    want = permutation_shapley(rows, ps.channels)
    conv, _ = shapley(ps)
    assert dict(zip(ps.channels, conv.tolist(), strict=True)) == pytest.approx(want, rel=1e-12)
    assert conv.sum() == pytest.approx(sum(c for _, c in rows), rel=1e-12)


def test_coalition_enumeration_equals_closed_form_on_random_game():
    rng = np.random.default_rng(0)
    n = 9
    masks = rng.integers(1, 1 << n, 300)
    values = rng.exponential(5.0, 300)
    np.testing.assert_allclose(shapley_coalitions(n, masks, values), shapley_closed_form(n, masks, values),
                               rtol=1e-10)


def test_masks_ignore_order_and_repeats():
    ps = aggregate_paths(pd.DataFrame({"path": ["A > B > A", "B"], "conversions": [1, 1]}))
    assert channel_set_masks(ps).tolist() == [0b11, 0b10]
