"""Each move of a plan judged on the model's draws: how likely it is to gain revenue.

A move's worth depends on where its money comes from or goes to. In a same-budget reallocation the dollars a
channel gains are taken from the channels that are cut (and the dollars a cut frees buy the increases), so in every
draw of the model a move is valued against the revenue per dollar of the moves on the other side:

    value_c = Δrevenue_c − Δspend_c · (Σ_other side Δrevenue / Σ_other side Δspend)

Where no move is on the other side (a budget that only grows or only shrinks) the money's alternative is its
``price``: nothing for a revenue goal, the break-even revenue per dollar for a profit or marginal-ROAS goal. The
probability of gaining revenue is the share of draws with a positive value (paired draws, so the correlations the
data leave between channels count).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.mmm.optimize import ChannelCurve

__all__ = ["MIN_MOVE", "move_probabilities"]

MIN_MOVE = 0.005  # a change below 0.5% of current spend (or $1/day) is no move


def move_probabilities(curves: list[ChannelCurve], allocation: Mapping[str, float], price: float = 0.0
                       ) -> dict[str, float | None]:
    """Per channel, the probability over the model's draws that its move gains revenue (None: not moved)."""
    moves: dict[str, tuple[float, np.ndarray]] = {}
    for cv in curves:
        new = float(allocation.get(cv.name, cv.current))
        ds = new - cv.current
        if cv.fixed_cost or abs(ds) < max(1.0, MIN_MOVE * cv.current):
            continue
        d = cv.draws(np.array([cv.current, new]))
        moves[cv.name] = (ds, d[:, 1] - d[:, 0])
    out: dict[str, float | None] = {cv.name: None for cv in curves}
    for name, (ds, dr) in moves.items():
        other = [(s, r) for n, (s, r) in moves.items() if n != name and np.sign(s) != np.sign(ds)]
        if other:
            per_dollar = sum(r for _, r in other) / sum(s for s, _ in other)
        else:
            per_dollar = np.full_like(dr, float(price))
        out[name] = float(np.mean(dr - ds * per_dollar > 0))
    return out


def annotate_moves(plan: dict, curves: list[ChannelCurve], held: Mapping[str, str], tested: set[str],
                   price: float = 0.0) -> None:
    """Add to each row of ``plan`` its move's probability of gaining revenue (``prob_gain``) and, where the plan
    kept the channel nearer its current spend than the model's best guess, the reason (``held_back``); channels kept
    for a lift test are bound by ``"lift test first"``."""
    probs = move_probabilities(curves, plan["allocation"], price)
    for row in plan["channels"]:
        name = row["channel"]
        row["prob_gain"] = probs.get(name)
        row["held_back"] = held.get(name)
        if name in tested:
            row["bound"] = "lift test first"
