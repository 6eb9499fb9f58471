"""What happens to a GlowBeauty customer in the days after the data ends: the planted future outcome.

Churn models are scored on the last day of the data and must be judged against what really happens next, so the
generator simulates a horizon beyond its end for every person from the same latent state that produced the
history, with noise, never by copying a label:

* Subscribers cancel with a probability driven by how many charges they have skipped, their recent support
  tickets (a refund request weighs more), how many of the last three months' newsletters they opened and their
  unobserved frailty: the hazard of :mod:`core.demo.glowbeauty_churn`, the same that ended the subscriptions
  cancelled within the history, drawn over the horizon from the state on the last day. At-risk subscribers
  (skipped charges, recent tickets, fading opens) mostly cancel; VIPs and regulars rarely do. Those who stay are
  charged on their schedule (a skipper may resume or keep skipping); VIPs add occasional one-off orders at their
  historical rate.
* Buyers without a subscription reorder at their own historical rate (repeat buyers; a gamma-distributed
  multiplier stands for unobserved taste) scaled by recent email engagement; one-time buyers, lapsed high-value
  subscribers and newsletter-only contacts rarely (re)buy.

The caller passes a random generator of its own (a separate stream), so adding the future changes nothing else.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.demo.glowbeauty_churn import cancel_logit, cancel_probability, cancel_state

__all__ = ["simulate_future"]

_PRODUCT_PRICES = (58.0, 28.0, 64.0, 42.0, 32.0, 36.0, 48.0, 89.0, 38.0, 22.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _bundle_value(rng: np.random.Generator, k_hi: int = 3) -> float:
    k = int(rng.integers(1, k_hi + 1))
    return float(sum(rng.choice(_PRODUCT_PRICES, size=k, replace=False)))


def simulate_future(rng: np.random.Generator, *, persona: str, patterns: list[str],
                    orders: list[tuple[float, Any, bool]], sub: dict[str, Any] | None,
                    tickets: list[tuple[float, str]], campaign_days: np.ndarray, opened: np.ndarray, days: int,
                    horizon: int) -> dict[str, Any]:
    """The person's outcome over ``[days, days + horizon)`` (day offsets from the data's start): orders, revenue,
    whether an active subscription is cancelled (``None`` without one) and whether no order is placed.
    ``tickets`` are the (day, kind) of the person's support tickets; a subscriber's frailty comes with ``sub``."""
    scale = horizon / 90.0  # hazards are set per 90 days and scale with the horizon
    recent = campaign_days >= days - 90
    open_rate = float(opened[recent].mean()) if recent.any() else 0.0
    refund = "support_heavy" in patterns
    frailty = float(rng.normal(0.0, 0.6))
    future: list[tuple[float, float]] = []  # (day, amount)
    churned_sub: bool | None = None

    if sub is not None and sub["status"] == "active":
        interval, price = float(sub["interval"]), float(sub["price"])
        last = max(d for d, _, is_sub in orders if is_sub)
        state = cancel_state(float(days), last_charge=last, interval=interval, ticket_days=[d for d, _ in tickets],
                             refund_day=next((d for d, kind in tickets if kind == "refund"), None),
                             campaign_days=campaign_days, opened=opened)
        skipped = state.skipped  # charges due by the last day that did not happen
        logit = cancel_logit(persona, state, sub["frailty"])
        churned_sub = bool(rng.random() < cancel_probability(logit, horizon))
        if churned_sub:  # the disengaged go first
            stop = days + horizon * (float(rng.beta(1.0, 2.0)) if skipped else float(rng.random()))
        else:
            stop = float(days + horizon)
        nxt = max(last + interval, float(days))  # on schedule: the next charge (one due on the last day, now)
        if skipped:  # a skipper who stays either resumes at some point or keeps skipping
            nxt = days + horizon * float(rng.random()) if (not churned_sub and rng.random() < 0.5) else math.inf
        while nxt < stop:
            future.append((nxt, price))
            nxt += interval
        if persona == "vip_subscriber":  # add-on orders at the person's own historical rate
            addons = sum(1 for _, _, is_sub in orders if not is_sub)
            rate = addons / max(days - float(sub["start_day"]), 30.0)
            for _ in range(int(rng.poisson(rate * horizon * float(rng.gamma(2.0, 0.5))))):
                day, value = days + horizon * float(rng.random()), _bundle_value(rng, 2)
                if day < stop:
                    future.append((day, value))
    elif persona == "repeat_buyer":
        rate = len(orders) / days * float(rng.gamma(3.0, 1.0 / 3.0)) * math.exp(2.0 * (open_rate - 0.24))
        rate *= 0.5 if refund else 1.0
        for _ in range(int(rng.poisson(rate * horizon))):
            future.append((days + horizon * float(rng.random()), _bundle_value(rng)))
    else:
        recency = days - orders[-1][0] if orders else math.inf
        logit = {"one_time_buyer": -3.4 + 0.7 * (recency < 60) + 3.0 * (open_rate - 0.18),
                 "churned_high_value": -3.5 + 2.0 * (open_rate - 0.06),
                 "newsletter_only": -3.8 + 3.0 * (open_rate - 0.22)}.get(persona, -4.0)
        logit += frailty - 1.0 * refund
        if rng.random() < 1.0 - (1.0 - _sigmoid(logit)) ** scale:
            future.append((days + horizon * float(rng.random()), _bundle_value(rng, 4)))

    return {
        "future_orders": len(future),
        "future_revenue": round(sum(a for _, a in future), 2),
        "churned_subscription": churned_sub,
        "purchase_churn": not future,
    }
