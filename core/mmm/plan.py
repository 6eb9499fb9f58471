"""Budget plans from a fitted MMM artifact: the optimizer's goals, guarded by the model's uncertainty.

Each channel's response comes from :mod:`core.mmm.curves` (the artifact's bootstrap draws, exact or through the
cached grid). A plan is risk-aware: a max-revenue plan is chosen at a low quantile of the model's draws, a same-budget
reallocation must gain revenue jointly in most draws (else its step is shortened or dropped), a channel grows only
so far beyond the spend the data has seen, and a large channel the data cannot identify is kept at its spend until a
lift test (:mod:`core.mmm.experiment`) measures it. Every held-back move says why.

The curve and what-if names (``channel_curves``, ``simulate``, ...) are re-exported here for existing callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from core.mmm.curves import (
    channel_curves,
    detect_fixed_costs,
    evaluate,
    is_fixed_cost,
    observed_max_spend,
    response_draws,
    simulate,
)
from core.mmm.experiment import recommend_tests
from core.mmm.moves import annotate_moves
from core.mmm.optimize import (
    ChannelCurve,
    Constraints,
    evaluate_allocation,
    min_budget_for_target,
    optimize_budget,
    optimize_profit,
    spend_to_marginal_roas,
)

__all__ = [
    "GOALS",
    "PERIOD_DAYS",
    "channel_curves",
    "detect_fixed_costs",
    "evaluate",
    "observed_max_spend",
    "is_fixed_cost",
    "make_plan",
    "response_draws",
    "simulate",
]

PERIOD_DAYS = {"day": 1.0, "week": 7.0, "month": 365.0 / 12, "year": 365.0}
GOALS = ("max_revenue", "min_budget", "max_profit", "target_mroas")
GUARD_QUANTILE = 0.05  # a same-budget plan must gain revenue in 95% of the model's draws
GUARD_STEPS = (1.0, 0.75, 0.5, 0.33, 0.2, 0.1)


# --------------------------------------------------------------------------------------------- plans
def _baseline_per_day(artifact: Mapping[str, Any]) -> float:
    base = float((artifact.get("baseline") or {}).get("total") or 0.0)
    n = int(artifact.get("n_obs") or 0)
    days = n * (7 if artifact.get("granularity") == "week" else 1)
    return base / days if days else 0.0


def _usd(x: float) -> str:
    """Whole dollars with the sign in front: -$1,562, $297."""
    return f"{'-' if x < 0 else ''}${abs(x):,.0f}"


def _uncertainty_notes(curves: list[ChannelCurve], risky: dict[str, float], expected: dict[str, float]
                       ) -> dict[str, str]:
    """Say where the risk-aware plan stays nearer the current mix than the expected-value plan, and why."""
    notes = {}
    for cv in curves:
        if cv.fixed_cost:
            continue
        a, b = risky[cv.name], expected[cv.name]
        gap = abs(b - cv.current) - abs(a - cv.current)  # how much less the cautious plan moves
        if gap < max(1.0, 0.1 * abs(b - cv.current), 0.02 * cv.current):
            continue
        target = b
        d = cv.draws(np.array([cv.current, target]))
        gain = d[:, 1] - d[:, 0]
        lo, hi = np.quantile(gain, [0.05, 0.95])
        notes[cv.name] = (
            f"{cv.name} stays closer to its current spend (${a:,.0f}/day rather than ${b:,.0f}/day) because the "
            f"model is unsure: moving to ${b:,.0f}/day would change its revenue by {_usd(lo)} to {_usd(hi)}/day "
            f"(90% interval)."
        )
    return notes


def _guarded(curves: list[ChannelCurve], plan: dict[str, Any], budget: float, c: Constraints, q: float
             ) -> tuple[dict[str, Any], float]:
    """Shorten the step from the current mix to ``plan`` until the joint lift is positive at quantile ``q``."""
    cur = np.array([cv.current for cv in curves])
    new = np.array([plan["allocation"][cv.name] for cv in curves])
    base = sum(cv.draws(np.array([cv.current]))[:, 0] for cv in curves)
    for t in GUARD_STEPS:
        x = cur + t * (new - cur)
        total = sum(cv.draws(np.array([v]))[:, 0] for cv, v in zip(curves, x, strict=True))
        if float(np.quantile(total - base, q)) > 0:
            if t == 1.0:
                return plan, 1.0
            pinned = {cv.name: float(v) for cv, v in zip(curves, x, strict=True)}
            fixed = Constraints(min_spend=pinned, max_spend=pinned, locked=set(c.locked))
            out = optimize_budget(curves, float(x.sum()), fixed, risk_quantile=None)
            out["notes"] = list(plan["notes"])
            return out, t
    return optimize_budget(curves, budget, Constraints(locked={cv.name for cv in curves}), risk_quantile=None), 0.0


def make_plan(artifact: Mapping[str, Any], *, goal: str = "max_revenue", daily_budget: float | None = None,
              period: str = "day", max_change: float | None = None, min_spend: Mapping[str, float] | None = None,
              max_spend: Mapping[str, float] | None = None, locked: Iterable[str] = (),
              target_revenue: float | None = None, margin: float | None = None, target_mroas: float | None = None,
              fixed: Iterable[str] | None = None, risk_quantile: float | None = 0.25,
              observed_max: Mapping[str, float] | None = None, extrapolation: float | None = 2.0,
              guard: float | None | str = "default", test_first: bool = True) -> dict[str, Any]:
    """A budget plan for one of the goals, in daily amounts plus per-period projections.

    ``daily_budget`` defaults to the current total daily spend; ``target_revenue`` (goal ``min_budget``) is the
    total revenue per ``period`` including the non-media baseline. Risk-aware by default: a max-revenue plan is
    never worse than the current mix at the ``risk_quantile`` of the model's uncertainty.

    A response curve is only known within the spend the data has seen: unless the caller sets a channel's maximum,
    a channel may grow to at most ``extrapolation`` × the larger of its current spend and ``observed_max`` (the
    highest 4-week mean daily spend in the data); ``None`` lifts that guard.

    A same-budget reallocation is also guarded jointly: where the whole plan's lift is not positive at the
    ``guard`` quantile of the model's draws (every channel's uncertainty at once, with the correlations the data
    leave between them), the step from the current mix is shortened until it is, or dropped (``None``: no guard;
    by default ``GUARD_QUANTILE``).

    ``tests`` lists the lift tests recommended for channels the data cannot pin down (``core.mmm.experiment``);
    with ``test_first`` an unidentified one is kept at its current spend until its test is read (unless the caller
    constrains it). Each row carries its move's probability of gaining revenue and, if held back, why.
    """
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; choose one of: {', '.join(GOALS)}")
    if guard == "default":
        guard = GUARD_QUANTILE
    if period not in PERIOD_DAYS:
        raise ValueError(f"unknown period {period!r}; choose one of: {', '.join(PERIOD_DAYS)}")
    curves = channel_curves(artifact, fixed)
    known = {cv.name for cv in curves}
    for what, names in (("min", min_spend or {}), ("max", max_spend or {}), ("locked", locked)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"unknown channel(s) in {what}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    tests = recommend_tests(artifact, {cv.name for cv in curves if cv.fixed_cost})
    asked = set(min_spend or {}) | set(max_spend or {}) | set(locked)
    hold = {t.channel: t for t in tests if test_first and t.hold and t.channel not in asked}
    held: dict[str, str] = {}
    caps = dict(max_spend or {})
    guarded: dict[str, float] = {}
    if extrapolation is not None:
        for cv in curves:
            if cv.name not in caps and not cv.fixed_cost:
                seen = max(cv.current, float((observed_max or {}).get(cv.name, 0.0)))
                guarded[cv.name] = extrapolation * seen
                lo = float((min_spend or {}).get(cv.name, 0.0))
                caps[cv.name] = max(guarded[cv.name], lo)
    c = Constraints(min_spend=dict(min_spend or {}), max_spend=caps, locked=set(locked) | set(hold),
                    max_change=max_change)
    days = PERIOD_DAYS[period]
    current_total = sum(cv.current for cv in curves)
    notes: list[str] = []
    if goal == "max_revenue":
        budget = current_total if daily_budget is None else float(daily_budget)
        plan = optimize_budget(curves, budget, c, risk_quantile=risk_quantile)
        if risk_quantile is not None:
            expected = optimize_budget(curves, budget, c, risk_quantile=None)
            held = _uncertainty_notes(curves, plan["allocation"], expected["allocation"])
            notes += list(held.values())
            first = plan
            if abs(budget - current_total) <= 1e-6 * max(1.0, current_total):
                low = plan["projection"]["lift_per_day_low"]
                moved = max(abs(plan["allocation"][cv.name] - cv.current) / max(cv.current, 1.0) for cv in curves)
                if plan["projection"]["lift_per_day"] > 0 and moved >= 0.005 and guard is not None:
                    plan, t = _guarded(curves, plan, budget, c, guard)
                    if t < 1.0 and t > 0:
                        notes.append(f"The plan takes {t:.0%} of the step the model's best guess suggests: the "
                                     f"full step would not be {1 - guard:.0%} sure to gain revenue.")
                        held.update({cv.name: f"{cv.name} takes {t:.0%} of the step toward "
                                              f"${first['allocation'][cv.name]:,.0f}/day: the full step would not be "
                                              f"{1 - guard:.0%} sure to gain revenue." for cv in curves
                                     if abs(first["allocation"][cv.name] - cv.current) >= max(1.0, 0.005 * cv.current)})
                    low = plan["projection"]["lift_per_day_low"]
                    moved = max(abs(plan["allocation"][cv.name] - cv.current) / max(cv.current, 1.0) for cv in curves)
                if plan["projection"]["lift_per_day"] <= 0 or moved < 0.005:  # nothing sure to gain: keep the mix
                    plan = optimize_budget(curves, budget, Constraints(locked=known), risk_quantile=None)
                    notes.append("The model cannot tell a better mix from the current one with confidence; "
                                 "keep the current allocation.")
                    sure = first["projection"]["prob_positive_lift"]
                    held.update({cv.name: f"{cv.name} stays at ${cv.current:,.0f}/day: the mix the model would "
                                          f"choose (with ${first['allocation'][cv.name]:,.0f}/day here) gains revenue "
                                          f"in only {sure:.0%} of its draws." for cv in curves
                                 if abs(first["allocation"][cv.name] - cv.current) >= max(1.0, 0.005 * cv.current)})
                elif low < 0:
                    notes.append(f"The lift is likely but not certain: the 90% interval reaches "
                                 f"${low * days:,.0f} per {period}.")
    elif goal == "min_budget":
        if target_revenue is None:
            raise ValueError("goal min_budget needs target_revenue (total revenue per period)")
        media_target = float(target_revenue) / days - _baseline_per_day(artifact)
        if media_target <= 0:
            raise ValueError(f"the target ${float(target_revenue):,.0f} per {period} is below the revenue expected "
                             f"without paid media (${_baseline_per_day(artifact) * days:,.0f} per {period})")
        try:
            plan = min_budget_for_target(curves, media_target, c)
        except ValueError as e:
            raise ValueError(f"the target ${float(target_revenue):,.0f} per {period} needs "
                             f"${media_target * days:,.0f} per {period} from paid media on top of the "
                             f"${_baseline_per_day(artifact) * days:,.0f} expected without it, per day: {e}") from e
    elif goal == "max_profit":
        if margin is None:
            raise ValueError("goal max_profit needs margin (gross margin between 0 and 1)")
        plan = optimize_profit(curves, float(margin), c)
    else:
        plan = spend_to_marginal_roas(curves, float(target_mroas if target_mroas is not None else
                                                    artifact.get("target_roas", 1.0)), c)
    for cv in curves:
        if cv.name in guarded and plan["allocation"][cv.name] >= guarded[cv.name] * (1 - 1e-4):
            plan["notes"] = [n for n in plan["notes"] if not n.startswith(f"{cv.name} stopped at its maximum")]
            basis = "its highest 4-week" if observed_max and cv.name in observed_max else "its recent"
            notes.append(f"{cv.name} is held at ${guarded[cv.name]:,.0f}/day, {extrapolation:g}x {basis} daily "
                         f"spend: the model has not seen more and would be guessing beyond that.")
            held[cv.name] = notes[-1]
    for name, t in hold.items():
        lo, hi = t.roas_interval
        notes.append(f"{name} is kept at ${t.current_daily_spend:,.0f}/day until a lift test measures it: its ROAS "
                     f"is known only to within {lo:.2f}–{hi:.2f} (90%), so any move would be a guess.")
        held[name] = notes[-1]
    plan["notes"] = list(plan["notes"]) + notes
    plan["goal"] = goal
    plan["period"] = period
    plan["days_per_period"] = days
    fixed_names = {cv.name for cv in curves if cv.fixed_cost}
    for row in plan["channels"]:
        row["fixed_cost"] = row["channel"] in fixed_names
        row["locked"] = row["channel"] in set(locked)
    # the projection through the cached grid: exactly what the what-if simulator reports for the same mix
    ev = evaluate_allocation(channel_curves(artifact, fixed, interpolate=True), plan["allocation"])
    plan["projection"] = p = {k: v for k, v in ev.items() if k != "channels"}
    price = 1.0 / margin if goal == "max_profit" and margin else (
        float(target_mroas or artifact.get("target_roas", 1.0)) if goal == "target_mroas" else 0.0)
    annotate_moves(plan, channel_curves(artifact, fixed, interpolate=True), held, set(hold), price)
    plan["tests"] = [t.to_dict() for t in tests]
    base = _baseline_per_day(artifact)
    p.update({
        "baseline_per_day": base,
        "total_revenue_per_day": base + p["revenue"],
        "revenue_per_period": p["revenue"] * days,
        "revenue_per_period_low": p["revenue_low"] * days,
        "revenue_per_period_high": p["revenue_high"] * days,
        "lift_per_period": p["lift_per_day"] * days,
        "lift_per_period_low": p["lift_per_day_low"] * days,
        "lift_per_period_high": p["lift_per_day_high"] * days,
        "budget_per_period": (plan["budget"] or plan["total_optimized"]) * days,
    })
    return plan

