"""Why a GlowBeauty subscriber cancels: one hazard, used for the history and for the planted future alike.

A subscriber's log-odds of cancelling within the next 90 days are

    base + 0.45 x charges skipped + 0.5 x min(tickets in the last 90 days, 4) + 0.8 x refund requested
         - 2.5 x (share of the last 90 days' newsletters opened - 0.3) + frailty

where ``base`` is the persona's while the subscriber is charged on schedule and :data:`DECLINING_BASE` once a charge
has been skipped (the at-risk subscribers at the end of the data, the lapsed high-value ones before they cancel),
and ``frailty`` is an unobserved per-person N(0, 0.6) drawn once with the subscription. :mod:`core.demo.glowbeauty`
draws it on every charge date of a subscriber's history, for the period up to the next one, and
:mod:`core.demo.glowbeauty_future` over the horizon after the data ends, from the same person's state: a churn model
fitted on the past can learn the mechanism that the future follows, and the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CANCEL_BASE", "DECLINING_BASE", "FRAILTY_SD", "CancelState", "cancel_state", "cancel_logit",
           "cancel_probability"]

# baseline log-odds of cancelling within 90 days of an engaged subscriber, by persona (before the behavioural terms)
CANCEL_BASE: dict[str, float] = {"vip_subscriber": -4.0, "regular_subscriber": -3.2, "at_risk_subscriber": -3.2,
                                  "churned_high_value": -3.2}
DECLINING_BASE = -1.5  # ... and of any subscriber in decline, skipping the charges that fall due
FRAILTY_SD = 0.6
WINDOW = 90.0  # days: the hazard is set per 90 days; recent tickets and opens are counted over the last 90


@dataclass(frozen=True)
class CancelState:
    """What drives a cancellation, as of one moment."""

    skipped: int  # charges due since the last one that did not happen
    tickets: int  # support tickets in the last 90 days
    refund: bool  # a refund has been requested
    open_rate: float  # share of the last 90 days' newsletters opened (0 without any)


def cancel_state(now: float, *, last_charge: float, interval: float, ticket_days: list[float],
                 refund_day: float | None, campaign_days: np.ndarray, opened: np.ndarray) -> CancelState:
    """The state of a subscriber at day offset ``now`` from what happened before it: the last charge, ticket
    days, the day of a refund request (``None``: never) and each newsletter's day and whether it was opened."""
    recent = (campaign_days >= now - WINDOW) & (campaign_days < now)
    return CancelState(
        skipped=max(0, int((now - 1.0 - last_charge + 1e-9) // interval)),  # due on or before the day before now
        tickets=sum(1 for d in ticket_days if now - WINDOW <= d < now),
        refund=refund_day is not None and refund_day < now,
        open_rate=float(opened[recent].mean()) if recent.any() else 0.0,
    )


def cancel_logit(persona: str, state: CancelState, frailty: float) -> float:
    """Log-odds of cancelling within 90 days of a subscriber of ``persona`` in ``state``."""
    base = DECLINING_BASE if state.skipped else CANCEL_BASE[persona]
    return (base + 0.45 * state.skipped + 0.5 * min(state.tickets, 4) + 0.8 * state.refund
            - 2.5 * (state.open_rate - 0.3) + frailty)


def cancel_probability(logit: float, days: float) -> float:
    """Probability of cancelling within ``days`` at the 90-day log-odds ``logit`` (a constant hazard)."""
    return 1.0 - (1.0 - 1.0 / (1.0 + math.exp(-logit))) ** (days / WINDOW)
