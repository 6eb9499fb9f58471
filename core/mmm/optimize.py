"""Budget optimizer over fitted response curves.

Each channel is described by a :class:`ChannelCurve`: its current daily spend and a function mapping daily spend to
daily incremental KPI for every posterior/bootstrap draw of the model. The optimizer:

* solves the allocation **globally** by dynamic programming over a budget grid (max-plus convolution of the channel
  curves), which is exact up to the grid for any curve shape — concave or S-shaped (Hill shape > 1), where
  equalising marginal ROAS or a single local solve can stop at a poor local optimum — then polishes the grid
  solution with a bounded local solve;
* supports per-channel min/max, locked channels, fixed costs that do not scale, and a maximum relative change per
  channel;
* is **risk-aware**: with ``risk_quantile=q`` each channel's gain over its current spend is taken at the q-quantile of
  the draws (paired per draw), so moves into spend ranges the model is unsure about look less attractive and the plan
  stays close to the current mix where intervals are wide; ``None`` maximises the expected KPI;
* reports projected KPI and lift with a 90% interval (paired across draws), marginal ROAS before and after, and
  every constraint that binds.

Goals: :func:`optimize_budget` (max KPI for a budget), :func:`min_budget_for_target`, :func:`optimize_profit`
(max margin·KPI − spend) and :func:`spend_to_marginal_roas` (spend while marginal ROAS ≥ target).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

__all__ = [
    "ChannelCurve",
    "Constraints",
    "optimize_budget",
    "min_budget_for_target",
    "optimize_profit",
    "spend_to_marginal_roas",
    "evaluate_allocation",
]

DrawsFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class ChannelCurve:
    """One channel's response: ``draws(spend_grid)`` → array (n_draws, len(grid)) of daily incremental KPI."""

    name: str
    current: float
    draws: DrawsFn
    fixed_cost: bool = False  # e.g. an email platform fee: counted in the budget, never moved


@dataclass
class Constraints:
    """Allocation constraints; amounts are daily spend."""

    min_spend: Mapping[str, float] = field(default_factory=dict)
    max_spend: Mapping[str, float] = field(default_factory=dict)
    locked: frozenset[str] | set[str] = frozenset()
    max_change: float | None = None  # e.g. 0.3 → each channel within ±30% of its current spend


def _check_names(curves: list[ChannelCurve], c: Constraints) -> None:
    known = {cv.name for cv in curves}
    for what, names in (("min", c.min_spend), ("max", c.max_spend), ("locked", c.locked)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"unknown channel(s) in {what} constraint: {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
    if c.max_change is not None and not (0 <= c.max_change):
        raise ValueError(f"max_change must be ≥ 0 (got {c.max_change})")


def _bounds(curves: list[ChannelCurve], c: Constraints) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Per-channel [lo, hi] and, per channel, the names of the constraints that set each bound."""
    _check_names(curves, c)
    lo, hi, why = [], [], []
    for cv in curves:
        reasons: list[str] = []
        if cv.name in c.locked or cv.fixed_cost:
            lo.append(cv.current)
            hi.append(cv.current)
            why.append(["fixed cost" if cv.fixed_cost else "locked"])
            continue
        a, b = 0.0, np.inf
        if c.max_change is not None:
            a, b = cv.current * (1 - c.max_change), cv.current * (1 + c.max_change)
            reasons.append("max change")
        if cv.name in c.min_spend:
            a = max(a, float(c.min_spend[cv.name]))
        if cv.name in c.max_spend:
            b = min(b, float(c.max_spend[cv.name]))
        if a > b + 1e-9:
            raise ValueError(f"infeasible bounds for {cv.name}: minimum {a:,.2f} exceeds maximum {b:,.2f}")
        lo.append(max(a, 0.0))
        hi.append(b)
        why.append(reasons)
    return np.array(lo), np.array(hi), why


class _Objective:
    """Per-channel value functions (expected, or paired q-quantile of the gain over current) on demand."""

    def __init__(self, curves: list[ChannelCurve], risk_quantile: float | None, scale: float = 1.0,
                 cost: float = 0.0) -> None:
        if risk_quantile is not None and not 0 < risk_quantile < 1:
            raise ValueError(f"risk_quantile must be in (0, 1) (got {risk_quantile})")
        self.curves, self.q, self.scale, self.cost = curves, risk_quantile, scale, cost
        self._base = [cv.draws(np.array([cv.current]))[:, 0] for cv in curves]

    def channel(self, i: int, x: np.ndarray) -> np.ndarray:
        """Value of channel i at spends x (vector) → vector."""
        d = self.curves[i].draws(np.asarray(x, dtype=float))
        if self.q is None:
            v = d.mean(axis=0)
        else:
            v = np.quantile(d - self._base[i][:, None], self.q, axis=0)
        return self.scale * v - self.cost * np.asarray(x, dtype=float)


def _dp(values: list[np.ndarray], lo_k: np.ndarray, hi_k: np.ndarray, total_k: int) -> np.ndarray:
    """Max-plus dynamic programme: choose k_i ∈ [lo_k_i, hi_k_i] with Σ k_i ≤ total_k maximising Σ values_i[k_i]."""
    n = len(values)
    neg = -np.inf
    best = np.full(total_k + 1, neg)
    best[0] = 0.0
    choice = np.zeros((n, total_k + 1), dtype=np.int64)
    for i in range(n):
        v = values[i]  # value at k = 0..hi_k_i
        new = np.full(total_k + 1, neg)
        arg = np.zeros(total_k + 1, dtype=np.int64)
        for k in range(int(lo_k[i]), int(min(hi_k[i], total_k)) + 1):
            cand = np.full(total_k + 1, neg)
            cand[k:] = best[: total_k + 1 - k] + v[k]
            better = cand > new
            new[better] = cand[better]
            arg[better] = k
        best, choice[i] = new, arg
    b = int(np.argmax(best))
    if not np.isfinite(best[b]):
        raise ValueError("no feasible allocation on the budget grid")
    ks = np.zeros(n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        ks[i] = choice[i, b]
        b -= ks[i]
    return ks


def _solve(curves: list[ChannelCurve], obj: _Objective, lo: np.ndarray, hi: np.ndarray, budget: float | None,
           grid: int) -> np.ndarray:
    """Global (grid DP) then local (SLSQP) maximisation of Σ obj_i(x_i) s.t. lo ≤ x ≤ hi, Σx ≤ budget."""
    n = len(curves)
    free = hi > lo + 1e-9
    x = lo.copy()
    if not free.any():
        return x
    if budget is None:  # separable: each channel on its own
        caps = np.array([max(_cap(cv), lo_i) for cv, lo_i in zip(curves, lo, strict=True)])
        cap = np.where(np.isfinite(hi), hi, caps)
        for i in np.flatnonzero(free):
            g = np.linspace(lo[i], cap[i], grid + 1)
            x[i] = g[int(np.argmax(obj.channel(i, g)))]
        hi = np.minimum(hi, cap)
    else:
        rest = budget - lo.sum()
        hi = np.minimum(hi, lo + rest)  # no channel can take more than what is left
        step = rest / grid
        if step <= 0:
            return x
        values, lo_k, hi_k = [], np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        for i in range(n):
            kmax = int(np.floor((hi[i] - lo[i]) / step + 1e-9)) if free[i] else 0
            hi_k[i] = kmax
            values.append(obj.channel(i, lo[i] + step * np.arange(kmax + 1)))
        ks = _dp(values, lo_k, hi_k, grid)
        x = lo + step * ks
    # local polish around the grid optimum (the grid bracket keeps it in the same basin)
    idx = np.flatnonzero(free)
    width = (hi - lo)[idx] / grid * 2 if budget is None else np.full(idx.size, (budget - lo.sum()) / grid * 2)
    blo = np.maximum(lo[idx], x[idx] - width)
    bhi = np.minimum(hi[idx], x[idx] + width)

    def f(z: np.ndarray) -> float:
        return -float(sum(obj.channel(i, np.array([z[j]]))[0] for j, i in enumerate(idx)))

    def jac(z: np.ndarray) -> np.ndarray:  # separable: each channel's own central difference
        g = np.empty(idx.size)
        for j, i in enumerate(idx):
            h = max(1e-3, 1e-4 * abs(z[j]))
            v = obj.channel(i, np.array([max(z[j] - h, 0.0), z[j] + h]))
            g[j] = -(v[1] - v[0]) / (z[j] + h - max(z[j] - h, 0.0))
        return g

    cons = []
    if budget is not None:
        fixed = lo[~free].sum()
        cons = [{"type": "ineq", "fun": lambda z: budget - fixed - z.sum()}]
    res = minimize(f, x[idx], jac=jac, method="SLSQP", bounds=list(zip(blo, bhi, strict=True)), constraints=cons,
                   options={"maxiter": 100, "ftol": 1e-10})
    if res.success and f(res.x) <= f(x[idx]) and (budget is None or res.x.sum() <= budget - lo[~free].sum() + 1e-6):
        x[idx] = np.clip(res.x, blo, bhi)
    return x


def _cap(cv: ChannelCurve) -> float:
    """A generous upper search limit for unconstrained goals: 5x current spend (at least 1,000)."""
    return max(5 * cv.current, 1000.0)


def _marginal(cv: ChannelCurve, x: float) -> float:
    h = max(1.0, 0.01 * x)
    a, b = max(x - h, 0.0), x + h
    d = cv.draws(np.array([a, b])).mean(axis=0)
    return float((d[1] - d[0]) / (b - a))


def evaluate_allocation(curves: list[ChannelCurve], allocation: Mapping[str, float],
                        days_per_year: float = 365.0) -> dict[str, Any]:
    """Projected daily KPI of an allocation vs the current one, with 90% intervals (paired over draws)."""
    unknown = sorted(set(allocation) - {cv.name for cv in curves})
    if unknown:
        raise ValueError(f"unknown channel(s): {', '.join(unknown)}")
    per, tot_new, tot_cur = {}, 0.0, 0.0
    for cv in curves:
        spend = float(allocation.get(cv.name, cv.current))
        if spend < 0:
            raise ValueError(f"spend for {cv.name} must be ≥ 0 (got {spend})")
        d = cv.draws(np.array([cv.current, spend]))
        cur, new = d[:, 0], d[:, 1]
        tot_cur, tot_new = tot_cur + cur, tot_new + new
        lift = new - cur
        per[cv.name] = {
            "current_spend": cv.current,
            "spend": spend,
            "revenue": float(new.mean()),
            "revenue_low": float(np.quantile(new, 0.05)),
            "revenue_high": float(np.quantile(new, 0.95)),
            "lift": float(lift.mean()),
            "lift_low": float(np.quantile(lift, 0.05)),
            "lift_high": float(np.quantile(lift, 0.95)),
            "marginal_roas": _marginal(cv, spend),
        }
    lift = np.asarray(tot_new) - np.asarray(tot_cur)
    return {
        "channels": per,
        "current_revenue": float(np.mean(tot_cur)),
        "revenue": float(np.mean(tot_new)),
        "revenue_low": float(np.quantile(tot_new, 0.05)),
        "revenue_high": float(np.quantile(tot_new, 0.95)),
        "lift_per_day": float(lift.mean()),
        "lift_per_day_low": float(np.quantile(lift, 0.05)),
        "lift_per_day_high": float(np.quantile(lift, 0.95)),
        "lift_per_year": float(lift.mean() * days_per_year),
        "lift_per_year_low": float(np.quantile(lift, 0.05) * days_per_year),
        "lift_per_year_high": float(np.quantile(lift, 0.95) * days_per_year),
        "prob_positive_lift": float((lift > 0).mean()),
    }


def _arrow(cur: float, new: float, tol: float = 0.02) -> str:
    if new > cur * (1 + tol) + 1e-9:
        return "↑"
    if new < cur * (1 - tol) - 1e-9:
        return "↓"
    return "→"


def _plan(curves: list[ChannelCurve], x: np.ndarray, lo: np.ndarray, hi: np.ndarray, why: list[list[str]],
          goal: str, budget: float | None, extra_notes: list[str]) -> dict[str, Any]:
    alloc = {cv.name: float(v) for cv, v in zip(curves, x, strict=True)}
    ev = evaluate_allocation(curves, alloc)
    notes = list(extra_notes)
    rows = []
    for i, cv in enumerate(curves):
        new = alloc[cv.name]
        bound = None
        if why[i] and why[i][0] in {"locked", "fixed cost"}:
            bound = why[i][0]
        elif hi[i] > lo[i]:
            tol = max(1e-6, 1e-4 * max(hi[i] if np.isfinite(hi[i]) else 0, 1))
            if abs(new - hi[i]) <= tol and np.isfinite(hi[i]):
                bound = "maximum change" if "max change" in why[i] and abs(hi[i] - cv.current * 1) > 0 else "maximum"
                notes.append(f"{cv.name} stopped at its {bound} (${hi[i]:,.0f}/day); the model would move further.")
            elif abs(new - lo[i]) <= tol and lo[i] > 0:
                bound = "maximum change" if "max change" in why[i] else "minimum"
                notes.append(f"{cv.name} stopped at its {bound} (${lo[i]:,.0f}/day); the model would cut further.")
        c = ev["channels"][cv.name]
        rows.append({
            "channel": cv.name, "current": cv.current, "optimized": new, "change": new - cv.current,
            "change_pct": (new - cv.current) / cv.current if cv.current else None,
            "arrow": _arrow(cv.current, new), "marginal_roas_before": _marginal(cv, cv.current),
            "marginal_roas_after": c["marginal_roas"], "revenue_before": float(cv.draws(np.array([cv.current])).mean()),
            "revenue_after": c["revenue"], "bound": bound,
        })
    total = float(x.sum())
    if budget is not None and total < budget - max(1.0, 1e-4 * budget):
        notes.append(f"Constraints cap daily spend at ${total:,.0f}; ${budget - total:,.0f}/day of the budget stays "
                     f"unspent.")
    return {
        "goal": goal,
        "budget": budget,
        "total_current": float(sum(cv.current for cv in curves)),
        "total_optimized": total,
        "allocation": alloc,
        "current": {cv.name: cv.current for cv in curves},
        "channels": rows,
        "projection": {k: v for k, v in ev.items() if k != "channels"},
        "notes": notes,
    }


def optimize_budget(curves: list[ChannelCurve], daily_budget: float, constraints: Constraints | None = None,
                    risk_quantile: float | None = 0.25, grid: int = 400) -> dict[str, Any]:
    """Maximise the (risk-adjusted) daily KPI for a total daily budget under the constraints."""
    if not curves:
        raise ValueError("no channels to optimise")
    if not np.isfinite(daily_budget) or daily_budget <= 0:
        raise ValueError(f"daily budget must be a positive amount (got {daily_budget})")
    c = constraints or Constraints()
    lo, hi, why = _bounds(curves, c)
    if lo.sum() > daily_budget + 1e-6:
        raise ValueError(f"budget ${daily_budget:,.2f}/day is below the sum of minimum and fixed spends "
                         f"(${lo.sum():,.2f}/day)")
    obj = _Objective(curves, risk_quantile)
    x = _solve(curves, obj, lo, hi, daily_budget, grid)
    notes = []
    if risk_quantile is not None:
        notes.append(f"Risk-aware plan: each move is valued at the {risk_quantile:.0%} quantile of the model's "
                     f"uncertainty, so channels whose response is uncertain move less.")
    return _plan(curves, x, lo, hi, why, "max_revenue", daily_budget, notes)


def min_budget_for_target(curves: list[ChannelCurve], target_daily_kpi: float,
                          constraints: Constraints | None = None, grid: int = 300, tol: float = 1e-3
                          ) -> dict[str, Any]:
    """The smallest daily budget whose optimal allocation reaches an expected daily KPI target."""
    c = constraints or Constraints()
    lo, hi, why = _bounds(curves, c)
    obj = _Objective(curves, None)

    def best(b: float) -> tuple[float, np.ndarray]:
        x = _solve(curves, obj, lo, hi, b, grid)
        return float(sum(obj.channel(i, np.array([x[i]]))[0] for i in range(len(curves)))), x

    a = max(lo.sum(), 1e-6)
    b = max(a * 2, sum(cv.current for cv in curves))
    cap = hi.sum() if np.isfinite(hi).all() else sum(_cap(cv) for cv in curves) * 4
    while best(b)[0] < target_daily_kpi:
        if b >= cap:
            raise ValueError(f"the target ${target_daily_kpi:,.0f}/day is out of reach: even "
                             f"${cap:,.0f}/day of spend yields about ${best(cap)[0]:,.0f}/day")
        b = min(b * 2, cap)
    if best(a)[0] >= target_daily_kpi:
        b = a
    while b - a > tol * b:
        m = (a + b) / 2
        if best(m)[0] >= target_daily_kpi:
            b = m
        else:
            a = m
    x = best(b)[1]
    return _plan(curves, x, lo, hi, why, "min_budget_for_target", b,
                 [f"${b:,.0f}/day is the smallest budget expected to reach ${target_daily_kpi:,.0f}/day."])


def optimize_profit(curves: list[ChannelCurve], gross_margin: float, constraints: Constraints | None = None,
                    grid: int = 400) -> dict[str, Any]:
    """The spend per channel maximising gross_margin × incremental KPI − spend (no budget cap)."""
    if not 0 < gross_margin <= 1:
        raise ValueError(f"gross margin must be in (0, 1] (got {gross_margin})")
    c = constraints or Constraints()
    lo, hi, why = _bounds(curves, c)
    obj = _Objective(curves, None, scale=gross_margin, cost=1.0)
    x = _solve(curves, obj, lo, hi, None, grid)
    return _plan(curves, x, lo, hi, why, "max_profit", None,
                 [f"Spend where each extra dollar still returns at least ${1 / gross_margin:,.2f} of revenue "
                  f"(gross margin {gross_margin:.0%})."])


def spend_to_marginal_roas(curves: list[ChannelCurve], target_roas: float = 1.0,
                           constraints: Constraints | None = None, grid: int = 400) -> dict[str, Any]:
    """Spend on each channel up to where its marginal ROAS falls to ``target_roas``."""
    if target_roas <= 0:
        raise ValueError(f"target marginal ROAS must be positive (got {target_roas})")
    c = constraints or Constraints()
    lo, hi, why = _bounds(curves, c)
    obj = _Objective(curves, None, scale=1.0, cost=target_roas)
    x = _solve(curves, obj, lo, hi, None, grid)
    return _plan(curves, x, lo, hi, why, "marginal_roas_target", None,
                 [f"Each channel spends while its marginal ROAS is at least {target_roas:.2f}x."])
