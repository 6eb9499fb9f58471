"""Channel response curves from a fitted MMM artifact, cached on a spend grid, and the what-if simulator.

The artifact (see :func:`core.mmm.fit.fit_mmm`) holds, per channel, bootstrap draws of the response parameters. This
module turns each channel into a :class:`~core.mmm.optimize.ChannelCurve` whose draws are **precomputed on a spend
grid** once per artifact and interpolated afterwards, so the optimizer (:mod:`core.mmm.plan`) and the what-if
simulator (:func:`simulate`) answer in milliseconds without touching the model again.

Fixed-cost channels (an email platform fee: spend does not buy more response) are counted in the budget and never
moved; their revenue does not change with their spend.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.mmm.optimize import ChannelCurve, evaluate_allocation
from core.mmm.response import response

__all__ = [
    "channel_curves",
    "detect_fixed_costs",
    "evaluate",
    "is_fixed_cost",
    "observed_max_spend",
    "response_draws",
    "simulate",
]

GRID_POINTS = 1025


# --------------------------------------------------------------------------------------------- response per draw
def response_draws(channel: Mapping[str, Any], spend: np.ndarray | float) -> np.ndarray:
    """Daily incremental KPI at constant daily ``spend`` for every draw, shape (D, G).

    The model's own curve (:func:`core.mmm.response.response`, Hill from ``core.mmm.saturation``).
    """
    x = np.atleast_1d(np.asarray(spend, dtype=float))
    out = np.asarray(response(channel, x, draws=True), dtype=float)
    return out.reshape(-1, x.size)


# --------------------------------------------------------------------------------------------- fixed costs
def is_fixed_cost(name: str, channel: Mapping[str, Any], fixed: Iterable[str] | None = None) -> bool:
    """Whether a channel is a fixed cost: named by the caller (overrides), else as flagged in the artifact."""
    if fixed is not None:
        return name in set(fixed)
    return bool(channel.get("fixed_cost"))


def observed_max_spend(marketing: pd.DataFrame, window: int = 28) -> dict[str, float]:
    """Per channel, the highest ``window``-day mean daily spend in the data (the range the model has seen)."""
    if marketing is None or marketing.empty or not {"date", "channel", "spend"} <= set(marketing.columns):
        return {}
    w = marketing.pivot_table(index="date", columns="channel", values="spend", aggfunc="sum").sort_index()
    w.index = pd.to_datetime(w.index)
    if len(w) > 1 and (w.index[1] - w.index[0]).days == 1:
        w = w.asfreq("D").fillna(0.0)
    r = w.rolling(window, min_periods=max(1, window // 2)).mean().max()
    return {str(k): float(v) for k, v in r.items() if np.isfinite(v)}


def detect_fixed_costs(marketing: pd.DataFrame, days: int = 180, tol: float = 0.02) -> set[str]:
    """Channels paid as a flat monthly fee: the same total in every full calendar month of the last ``days`` days.

    An email platform or a retainer bills a fee per month however it is spread over the days (evenly, or booked on
    send days); bought media does not come in identical monthly totals. Needs at least two full months.
    """
    if marketing is None or marketing.empty or not {"date", "channel", "spend"} <= set(marketing.columns):
        return set()
    m = marketing[["date", "channel", "spend"]].copy()
    m["date"] = pd.to_datetime(m["date"])
    m = m[m["date"] > m["date"].max() - pd.Timedelta(days=days)]
    covered = m.groupby(m["date"].dt.to_period("M"))["date"].nunique()
    full = covered[covered == covered.index.days_in_month].index
    if len(full) < 2:
        return set()
    totals = m.groupby([m["channel"], m["date"].dt.to_period("M")])["spend"].sum().unstack(fill_value=0.0)
    out = set()
    for ch, row in totals.reindex(columns=full, fill_value=0.0).iterrows():
        mid = float(row.median())
        if mid > 0 and float((row - mid).abs().max()) <= tol * mid:
            out.add(str(ch))
    return out


# --------------------------------------------------------------------------------------------- cached grids
@dataclass
class _Grid:
    name: str
    current: float
    fixed: bool
    grid: np.ndarray  # (G,)
    values: np.ndarray  # (D, G)
    channel: Mapping[str, Any]

    def draws(self, x: np.ndarray) -> np.ndarray:
        """Interpolated draws at spends x (exact outside the grid)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.fixed:  # response does not depend on a fixed fee
            return np.repeat(self.at_current[:, None], x.size, axis=1)
        g = self.grid
        inside = (x >= 0) & (x <= g[-1])
        xi = np.clip(x, 0.0, g[-1])
        idx = np.clip(np.searchsorted(g, xi, side="right") - 1, 0, g.size - 2)
        w = (xi - g[idx]) / (g[idx + 1] - g[idx])
        out = self.values[:, idx] * (1 - w) + self.values[:, idx + 1] * w
        if not inside.all():
            out[:, ~inside] = response_draws(self.channel, np.maximum(x[~inside], 0.0))
        return out

    @property
    def at_current(self) -> np.ndarray:
        if not hasattr(self, "_cur"):
            self._cur = response_draws(self.channel, np.array([self.current]))[:, 0]
        return self._cur


_CACHE: dict[str, list[_Grid]] = {}
_BY_ID: dict[tuple[int, Any], tuple[Mapping[str, Any], str]] = {}  # artifact object → its fingerprint
_LOCK = threading.Lock()


def _fingerprint(artifact: Mapping[str, Any], fixed: Iterable[str] | None) -> str:
    """A cheap key of what the curves depend on (dates, draws, current spends, fixed-cost set)."""
    h = hashlib.sha256()
    h.update(repr((artifact.get("start"), artifact.get("end"), artifact.get("n_obs"), artifact.get("seed"),
                   artifact.get("granularity"), sorted(fixed) if fixed is not None else None)).encode())
    for name, ch in sorted((artifact.get("channels") or {}).items()):
        h.update(name.encode())
        h.update(repr(float(ch.get("current_daily_spend", 0.0))).encode())
        h.update(repr(ch.get("fixed_cost")).encode())
        for key, vals in sorted((ch.get("params_draws") or {}).items()):
            a = np.asarray(vals, dtype=float)
            h.update(key.encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _grid_max(ch: Mapping[str, Any], current: float) -> float:
    half = np.asarray((ch.get("params_draws") or {}).get("half") or [(ch.get("saturation") or {}).get("half", 0)],
                      dtype=float)
    opt = float(ch.get("optimal_daily_spend") or 0.0)
    curve_max = max((ch.get("curve") or {}).get("spend") or [0.0])
    return float(max(6 * current, 3 * np.nanmedian(half) if half.size else 0.0, 2 * opt, curve_max, 1000.0))


def _grids(artifact: Mapping[str, Any], fixed: Iterable[str] | None = None) -> list[_Grid]:
    channels = artifact.get("channels") or {}
    if not channels:
        raise ValueError("the model has no channels")
    memo = (id(artifact), tuple(sorted(fixed)) if fixed is not None else None)
    with _LOCK:
        known = _BY_ID.get(memo)
    if known is not None and known[0] is artifact:  # the same dict object as last time: skip hashing
        key = known[1]
    else:
        key = _fingerprint(artifact, fixed)
        with _LOCK:
            if len(_BY_ID) > 64:
                _BY_ID.clear()
            _BY_ID[memo] = (artifact, key)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    out = []
    for name, ch in channels.items():
        current = float(ch.get("current_daily_spend") or 0.0)
        top = _grid_max(ch, current)
        grid = np.linspace(0.0, np.sqrt(top), GRID_POINTS) ** 2  # denser near zero, where curves bend most
        out.append(_Grid(name, current, is_fixed_cost(name, ch, fixed), grid, response_draws(ch, grid), ch))
    with _LOCK:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = out
    return out


def channel_curves(artifact: Mapping[str, Any], fixed: Iterable[str] | None = None,
                   interpolate: bool = False) -> list[ChannelCurve]:
    """One :class:`ChannelCurve` per artifact channel (current = mean daily spend of the last 4 weeks).

    By default the draws are the model's exact response: smooth curves let the optimizer's local polish converge in
    a few steps (piecewise-linear interpolation makes it crawl). ``interpolate=True`` uses the cached grid instead,
    the what-if fast path.
    """
    grids = _grids(artifact, fixed)
    if interpolate:
        return [ChannelCurve(g.name, g.current, g.draws, fixed_cost=g.fixed) for g in grids]

    def exact(g: _Grid):
        if g.fixed:
            return g.draws
        return lambda x, ch=g.channel: response_draws(ch, x)

    return [ChannelCurve(g.name, g.current, exact(g), fixed_cost=g.fixed) for g in grids]


# --------------------------------------------------------------------------------------------- what-if
def _q(a: np.ndarray, q: float) -> float:
    return float(np.quantile(a, q))


def simulate(artifact: Mapping[str, Any], allocation: Mapping[str, float], fixed: Iterable[str] | None = None,
             days_per_year: float = 365.0) -> dict[str, Any]:
    """Projected daily media revenue of a daily spend mix vs the current mix, with 90% intervals (paired draws).

    Channels missing from ``allocation`` keep their current spend. Fixed-cost channels keep their revenue.
    """
    grids = _grids(artifact, fixed)
    known = {g.name for g in grids}
    unknown = sorted(set(allocation) - known)
    if unknown:
        raise ValueError(f"unknown channel(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    tot_cur = tot_new = 0.0
    rows = []
    for g in grids:
        spend = float(allocation.get(g.name, g.current))
        if not np.isfinite(spend) or spend < 0:
            raise ValueError(f"spend for {g.name} must be a non-negative amount (got {allocation.get(g.name)})")
        d = g.draws(np.array([g.current, spend]))
        cur, new = d[:, 0], d[:, 1]
        tot_cur, tot_new = tot_cur + cur, tot_new + new
        lift = new - cur
        rows.append({
            "channel": g.name, "spend": spend, "current_spend": g.current, "fixed_cost": g.fixed,
            "revenue": float(new.mean()), "revenue_low": _q(new, 0.05), "revenue_high": _q(new, 0.95),
            "current_revenue": float(cur.mean()),
            "lift": float(lift.mean()), "lift_low": _q(lift, 0.05), "lift_high": _q(lift, 0.95),
        })
    tot_new, tot_cur = np.asarray(tot_new), np.asarray(tot_cur)
    lift = tot_new - tot_cur
    spend_new = sum(r["spend"] for r in rows)
    spend_cur = sum(r["current_spend"] for r in rows)
    return {
        "revenue": {"mean": float(tot_new.mean()), "low": _q(tot_new, 0.05), "high": _q(tot_new, 0.95)},
        "current_revenue": {"mean": float(tot_cur.mean()), "low": _q(tot_cur, 0.05), "high": _q(tot_cur, 0.95)},
        "lift": {
            "per_day": float(lift.mean()), "per_day_low": _q(lift, 0.05), "per_day_high": _q(lift, 0.95),
            "per_year": float(lift.mean() * days_per_year), "per_year_low": _q(lift, 0.05) * days_per_year,
            "per_year_high": _q(lift, 0.95) * days_per_year, "prob_positive": float((lift > 0).mean()),
        },
        "spend": {"per_day": spend_new, "current_per_day": spend_cur, "change_per_day": spend_new - spend_cur},
        "channels": rows,
    }



def evaluate(artifact: Mapping[str, Any], allocation: Mapping[str, float],
             fixed: Iterable[str] | None = None) -> dict[str, Any]:
    """The optimizer's own evaluation of a mix (same numbers a plan reports)."""
    return evaluate_allocation(channel_curves(artifact, fixed, interpolate=True), allocation)
