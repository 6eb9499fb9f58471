"""Shapley-value attribution, the simplified variant of Zhao et al. (2018).

"Shapley Value Methods for Attribution Modeling in Online Advertising" (Zhao, Mahboobi, Bagheri) define the value
of a coalition ``S`` of channels as the conversions (or revenue) of the journeys whose set of channels is a subset
of ``S``; order and repetition of touches are ignored. The Shapley value of a channel is its marginal contribution
averaged over every order in which channels can join. Here it is computed exactly over all ``2^n`` coalitions
(subset sums by a zeta transform over bitmasks, up to 20 channels).

Because ``v(S) = Σ_{T ⊆ S} w(T)`` (``w(T)``: conversions of journeys touching exactly the set ``T``), the game is a
sum of unanimity games and the Shapley value has the closed form ``φ_c = Σ_{T ∋ c} w(T) / |T|``; that form is used
beyond 20 channels and in tests as an independent check.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from core.attribution.journeys import PathSet

__all__ = ["shapley", "channel_set_masks", "shapley_coalitions", "shapley_closed_form", "MAX_EXACT_CHANNELS"]

MAX_EXACT_CHANNELS = 20


def channel_set_masks(ps: PathSet) -> np.ndarray:
    """Bitmask of the channel set of every distinct path."""
    path_idx, pos, chan, _ = ps.flat()
    if len(chan) == 0:
        return np.zeros(len(ps.paths), dtype=np.int64)
    starts = np.flatnonzero(pos == 0)
    return np.bitwise_or.reduceat(np.left_shift(np.int64(1), chan.astype(np.int64)), starts)


def shapley_coalitions(n: int, masks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exact Shapley values of the game ``v(S) = Σ values[masks ⊆ S]`` by enumeration of all coalitions."""
    if n > MAX_EXACT_CHANNELS:
        raise ValueError(f"exact coalition enumeration supports up to {MAX_EXACT_CHANNELS} channels, got {n}")
    size = 1 << n
    v = np.bincount(masks, weights=values, minlength=size).astype(float)
    all_masks = np.arange(size, dtype=np.int64)
    for i in range(n):  # zeta transform: v[S] = Σ_{T ⊆ S} w[T]
        has = (all_masks >> i) & 1 == 1
        v[has] += v[all_masks[has] ^ (1 << i)]
    pop = np.zeros(size, dtype=np.int64)
    for i in range(n):
        pop += (all_masks >> i) & 1
    weight = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])
    phi = np.zeros(n)
    for c in range(n):
        without = all_masks[((all_masks >> c) & 1) == 0]
        phi[c] = float(np.sum(weight[pop[without]] * (v[without | (1 << c)] - v[without])))
    return phi


def shapley_closed_form(n: int, masks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The same Shapley values from the unanimity decomposition: each set's value split equally among its members."""
    phi = np.zeros(n)
    sizes = np.array([bin(int(m)).count("1") for m in masks])
    for c in range(n):
        member = ((masks >> c) & 1) == 1
        phi[c] = float(np.sum(values[member] / sizes[member]))
    return phi


def shapley(ps: PathSet) -> tuple[np.ndarray, np.ndarray]:
    """Shapley credits (conversions, revenue per channel) under the simplified Zhao et al. (2018) game."""
    n = len(ps.channels)
    masks = channel_set_masks(ps)
    fn = shapley_coalitions if n <= MAX_EXACT_CHANNELS else shapley_closed_form
    return fn(n, masks, ps.conversions), fn(n, masks, ps.revenue)
