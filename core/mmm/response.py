"""Response curves from a fitted MMM artifact alone (no refit): used by the optimizer, simulator and forecast.

A channel's steady-state daily incremental KPI at a constant daily spend s is ``beta · hill(s; half, shape)``:
normalised adstock leaves a constant spend unchanged, so carry-over does not change the steady state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from core.mmm.saturation import hill, hill_derivative

if TYPE_CHECKING:
    from core.mmm.optimize import ChannelCurve

__all__ = ["response", "marginal_response", "channel_curve"]


def _params(channel: Mapping[str, Any], draws: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if draws:
        d = channel.get("params_draws") or {}
        if not d or not d.get("beta"):
            raise ValueError("channel entry has no params_draws: refit the model with bootstrap draws")
        return (np.asarray(d["beta"], float), np.asarray(d["half"], float), np.asarray(d["shape"], float))
    sat = channel["saturation"]
    beta = channel.get("beta")
    if beta is None:
        beta = float(np.mean(channel["params_draws"]["beta"]))
    return np.array([float(beta)]), np.array([float(sat["half"])]), np.array([float(sat["shape"])])


def response(channel: Mapping[str, Any], spend: np.ndarray | float, draws: bool = False) -> np.ndarray:
    """Daily incremental KPI at constant daily ``spend``; shape like ``spend``, or (D, G) with ``draws=True``."""
    beta, half, shape = _params(channel, draws)
    s = np.maximum(np.atleast_1d(np.asarray(spend, float)), 0.0)
    out = beta[:, None] * hill(s[None, :], half[:, None], shape[:, None])
    if draws:
        return out
    return out[0] if np.ndim(spend) else out[0, 0]


def marginal_response(channel: Mapping[str, Any], spend: np.ndarray | float, draws: bool = False) -> np.ndarray:
    """d(daily incremental KPI)/d(daily spend) — the marginal ROAS — at ``spend``; (D, G) with ``draws=True``."""
    beta, half, shape = _params(channel, draws)
    s = np.atleast_1d(np.asarray(spend, float))
    out = beta[:, None] * hill_derivative(s[None, :], half[:, None], shape[:, None])
    if draws:
        return out
    return out[0] if np.ndim(spend) else out[0, 0]


def channel_curve(name: str, channel: Mapping[str, Any]) -> ChannelCurve:
    """An optimizer ``ChannelCurve`` for an artifact channel entry (draws from the bootstrap)."""
    from core.mmm.optimize import ChannelCurve

    return ChannelCurve(name, float(channel["current_daily_spend"]),
                        lambda g, ch=channel: response(ch, g, draws=True),
                        fixed_cost=bool(channel.get("fixed_cost", False)))
