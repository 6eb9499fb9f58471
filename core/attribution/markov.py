"""Markov-chain attribution with removal effects, computed exactly from the absorbing chain.

Journeys are walks ``start → s1 → … → sn → conversion | null``. With order ``k`` a state is the tuple of the
last ``k`` channels (order 1: the channel itself). Transition probabilities are the observed transition counts
(weighted by how many journeys follow each path) divided by each state's outflow.

The probability of converting from ``start`` solves ``(I − Q) x = r`` (``Q``: transient-to-transient
probabilities, ``r``: one-step conversion probabilities) — the fundamental-matrix result, no simulation. The
*removal effect* of a channel is the relative drop in that probability when every state containing the channel
is removed (walks that would enter it end without converting). Credits split the total conversions in proportion
to the removal effects; revenue the same way on the chain whose conversion reward is the revenue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from core.attribution.journeys import PathSet

__all__ = ["MarkovChain", "build_chain", "markov", "removal_effects"]


@dataclass
class MarkovChain:
    """The transient part of an absorbing chain built from paths."""

    states: list[tuple[int, ...]]
    q: sparse.csr_matrix  # transient → transient probabilities (states only, start excluded)
    r_conv: np.ndarray  # one-step probability of converting from each state
    r_rev: np.ndarray  # one-step expected revenue from each state
    start: np.ndarray  # probability of the first state


def build_chain(ps: PathSet, order: int = 1) -> MarkovChain:
    """Count transitions of every distinct path (weighted by its journeys) into an absorbing chain of ``order``.

    States are encoded as integers (the last ``order`` channel codes in base ``n_channels + 1``), so the chain is
    built with array operations only.
    """
    if order not in (1, 2, 3, 4):
        raise ValueError(f"Markov order must be 1 to 4, got {order}")
    n_ch = len(ps.channels)
    base = n_ch + 1
    if base ** order >= 2**62:
        raise ValueError(f"too many channels ({n_ch}) for a Markov chain of order {order}")
    path_idx, pos, chan, length = ps.flat()
    key = np.zeros(len(chan), dtype=np.int64)
    for m in range(order):  # digit m holds the channel m steps back (0 when the path is shorter)
        back = np.zeros(len(chan), dtype=np.int64)
        ok = pos >= m
        back[ok] = chan[np.flatnonzero(ok) - m] + 1
        key += back * base**m
    uniq, state = np.unique(key, return_inverse=True)
    state = state.ravel()
    n = len(uniq)
    weight = ps.conversions + ps.nulls
    is_last = pos == length - 1
    nxt = ~is_last
    src = state[np.flatnonzero(nxt)]
    dst = state[np.flatnonzero(nxt) + 1]
    counts = sparse.coo_matrix((weight[path_idx[nxt]], (src, dst)), shape=(n, n)).tocsr()
    last_state = state[is_last]
    last_path = path_idx[is_last]
    conv_out = np.bincount(last_state, weights=ps.conversions[last_path], minlength=n)
    rev_out = np.bincount(last_state, weights=ps.revenue[last_path], minlength=n)
    null_out = np.bincount(last_state, weights=ps.nulls[last_path], minlength=n)
    outflow = np.asarray(counts.sum(axis=1)).ravel() + conv_out + null_out
    inv = np.divide(1.0, outflow, out=np.zeros(n), where=outflow > 0)
    q = sparse.diags(inv) @ counts
    first = pos == 0
    start = np.bincount(state[first], weights=weight[path_idx[first]], minlength=n)
    total = start.sum()
    start = start / total if total > 0 else start
    digits = [(uniq // base**m) % base for m in range(order)]
    states = [tuple(int(d[j]) - 1 for d in reversed(digits) if d[j] > 0) for j in range(n)]
    return MarkovChain(states=states, q=q.tocsr(), r_conv=conv_out * inv, r_rev=rev_out * inv, start=start)


def _absorb(chain: MarkovChain, keep: np.ndarray) -> tuple[float, float]:
    """(conversion probability, expected revenue) from start when only the ``keep`` states exist."""
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return 0.0, 0.0
    q = chain.q[idx][:, idx]
    a = (sparse.identity(len(idx), format="csc") - q.tocsc())
    rhs = np.column_stack([chain.r_conv[idx], chain.r_rev[idx]])
    x = spsolve(a, rhs)
    x = np.asarray(x).reshape(len(idx), 2)
    p0 = chain.start[idx]
    return float(p0 @ x[:, 0]), float(p0 @ x[:, 1])


def removal_effects(ps: PathSet, order: int = 1) -> dict:
    """Removal effect per channel (in conversions and in revenue) and the chain's base conversion probability."""
    chain = build_chain(ps, order)
    n_states = len(chain.states)
    all_states = np.ones(n_states, dtype=bool)
    p_conv, p_rev = _absorb(chain, all_states)
    contains = np.zeros((len(ps.channels), n_states), dtype=bool)
    for j, s in enumerate(chain.states):
        contains[list(s), j] = True
    re_conv = np.zeros(len(ps.channels))
    re_rev = np.zeros(len(ps.channels))
    for c in range(len(ps.channels)):
        pc, pr = _absorb(chain, ~contains[c])
        re_conv[c] = 1.0 - pc / p_conv if p_conv > 0 else 0.0
        re_rev[c] = 1.0 - pr / p_rev if p_rev > 0 else 0.0
    return {"conversion_probability": p_conv, "expected_revenue": p_rev, "removal_conversions": re_conv,
            "removal_revenue": re_rev, "states": n_states}


def _split(total: float, effects: np.ndarray) -> np.ndarray:
    s = effects.sum()
    return total * effects / s if s > 0 else np.zeros_like(effects)


def markov(ps: PathSet, order: int = 1) -> tuple[np.ndarray, np.ndarray, dict]:
    """Markov removal-effect credits: (conversions per channel, revenue per channel, diagnostics)."""
    eff = removal_effects(ps, order)
    conv = _split(ps.total_conversions, np.clip(eff["removal_conversions"], 0, None))
    rev = _split(ps.total_revenue, np.clip(eff["removal_revenue"], 0, None))
    return conv, rev, eff
