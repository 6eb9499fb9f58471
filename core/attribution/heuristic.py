"""Rule-based attribution models: first click, last click, last non-direct, linear, time decay, position-based.

Each model splits every conversion (and its revenue) over the touches of its path with weights that sum to one,
so credits always add up to the total conversions and revenue. All models run on the distinct paths of a
:class:`~core.attribution.journeys.PathSet` (vectorised with numpy), except time decay, which needs each touch's
age and runs on the touches of converting journeys.
"""

from __future__ import annotations

import numpy as np

from core.attribution.journeys import PathSet, _is_direct

__all__ = ["first_click", "last_click", "last_non_direct", "linear", "time_decay", "position_based", "Credits"]

Credits = tuple[np.ndarray, np.ndarray]  # (conversions per channel, revenue per channel), in PathSet.channels order


def _spread(ps: PathSet, path_idx: np.ndarray, chan: np.ndarray, weights: np.ndarray) -> Credits:
    n = len(ps.channels)
    conv = np.bincount(chan, weights=weights * ps.conversions[path_idx], minlength=n)
    rev = np.bincount(chan, weights=weights * ps.revenue[path_idx], minlength=n)
    return conv, rev


def first_click(ps: PathSet) -> Credits:
    """All credit to the first touch of each path."""
    path_idx, pos, chan, _ = ps.flat()
    return _spread(ps, path_idx, chan, (pos == 0).astype(float))


def last_click(ps: PathSet) -> Credits:
    """All credit to the last touch of each path."""
    path_idx, pos, chan, length = ps.flat()
    return _spread(ps, path_idx, chan, (pos == length - 1).astype(float))


def last_non_direct(ps: PathSet) -> Credits:
    """All credit to the last touch that is not a direct visit; a path of direct visits only credits Direct."""
    path_idx, pos, chan, length = ps.flat()
    direct = np.array([_is_direct(c) for c in ps.channels], dtype=bool)
    non_direct = ~direct[chan]
    target = np.full(len(ps.paths), -1, dtype=np.int64)
    np.maximum.at(target, path_idx, np.where(non_direct, pos, -1))
    lengths = np.fromiter((len(p) for p in ps.paths), dtype=np.int64, count=len(ps.paths))
    target = np.where(target < 0, lengths - 1, target)
    return _spread(ps, path_idx, chan, (pos == target[path_idx]).astype(float))


def linear(ps: PathSet) -> Credits:
    """Equal credit to every touch of the path (a channel touched twice gets two shares)."""
    path_idx, _, chan, length = ps.flat()
    return _spread(ps, path_idx, chan, 1.0 / length)


def position_based(ps: PathSet, first: float = 0.4, last: float = 0.4) -> Credits:
    """U-shaped: ``first`` to the first touch, ``last`` to the last, the rest spread over the middle touches.

    One touch gets 100%; two touches split in proportion ``first : last`` (50/50 by default).
    """
    if first < 0 or last < 0 or first + last > 1 + 1e-12:
        raise ValueError(f"position-based weights need first, last ≥ 0 and first + last ≤ 1 (got {first}, {last})")
    path_idx, pos, chan, length = ps.flat()
    middle = (1.0 - first - last) / np.maximum(length - 2, 1)
    w = np.where(pos == 0, first, np.where(pos == length - 1, last, middle))
    two = length == 2
    w = np.where(two, np.where(pos == 0, first, last) / (first + last) if first + last > 0 else 0.5, w)
    w = np.where(length == 1, 1.0, w)
    if first + last == 0:
        w = np.where(two, 0.5, w)
    return _spread(ps, path_idx, chan, w)


def time_decay(ps: PathSet, half_life_days: float = 7.0) -> Credits:
    """Credit halves for every ``half_life_days`` a touch lies before the conversion (weights normalised per path).

    Uses each touch's age relative to the conversion; for aggregated paths without timestamps, consecutive steps
    count as ``step_days`` apart (see :func:`~core.attribution.journeys.aggregate_paths`).
    """
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    n = len(ps.channels)
    g = ps.touch_group
    # subtract each group's youngest age so the largest weight is 1 (numerically safe for long lookbacks)
    youngest = np.full(len(ps.group_conversions), np.inf)
    np.minimum.at(youngest, g, ps.touch_age_days)
    w = np.power(0.5, (ps.touch_age_days - youngest[g]) / half_life_days)
    norm = np.bincount(g, weights=w, minlength=len(ps.group_conversions))
    share = w / norm[g]
    conv = np.bincount(ps.touch_channel, weights=share * ps.group_conversions[g], minlength=n)
    rev = np.bincount(ps.touch_channel, weights=share * ps.group_revenue[g], minlength=n)
    return conv, rev
