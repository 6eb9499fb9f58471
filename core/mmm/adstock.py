"""Adstock transforms: how spend carries over into later periods.

Both transforms are *normalised* by default (weights sum to 1), so a constant spend ``x`` maps to a steady-state
adstock of ``x``: the saturation curve then reads directly as "constant daily spend → daily response".
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

try:  # the compiled filter behind lfilter: the public wrapper costs more than the filtering on short series
    from scipy.signal._sigtools import _linear_filter as _lf

    _lf(np.array([1.0]), np.array([1.0, -0.5]), np.zeros(2), -1)
except Exception:  # pragma: no cover - other scipy versions
    _lf = None

__all__ = ["geometric_adstock", "geometric_adstock_grad", "delayed_adstock", "delayed_adstock_grad", "carryover",
           "weibull_adstock"]


def _ar1(x: np.ndarray, decay: float) -> np.ndarray:
    """s_t = x_t + decay·s_{t-1} along axis 0."""
    if _lf is not None and x.ndim == 1:
        return _lf(np.array([1.0]), np.array([1.0, -decay]), x, -1)
    return lfilter([1.0], [1.0, -decay], x, axis=0)


def geometric_adstock(x: np.ndarray, decay: float, normalize: bool = True) -> np.ndarray:
    """Geometric carry-over ``a_t = x_t + decay·a_{t-1}`` (times ``1-decay`` when normalised).

    Works along the first axis, so ``x`` may be (T,) or (T, k). ``decay`` is in [0, 1).
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"adstock decay must be in [0, 1) (got {decay})")
    a = _ar1(np.asarray(x, dtype=float), decay)
    return (1.0 - decay) * a if normalize else a


def geometric_adstock_grad(x: np.ndarray, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised geometric adstock and its derivative with respect to ``decay`` (for gradient-based fits)."""
    x = np.asarray(x, dtype=float)
    s = _ar1(x, decay)
    # ds_t/dd = s_{t-1} + d·ds_{t-1}/dd
    s_lag = np.empty_like(s)
    s_lag[0] = 0.0
    s_lag[1:] = s[:-1]
    ds = _ar1(s_lag, decay)
    return (1.0 - decay) * s, (1.0 - decay) * ds - s


def delayed_adstock(x: np.ndarray, decay: float, stages: int = 2) -> np.ndarray:
    """Delayed-peak carry-over: ``stages`` geometric filters in a row (an Erlang/gamma-shaped kernel).

    Weights ``C(l+k-1, l)·decay^l·(1-decay)^k`` sum to 1; with ``stages`` k > 1 the effect peaks
    ``(k-1)·decay/(1-decay)`` periods after the spend (a video or TV campaign that builds up), with k = 1 it is the
    geometric adstock. One parameter per shape, so the fit stays as cheap as the geometric one.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"adstock decay must be in [0, 1) (got {decay})")
    if stages < 1:
        raise ValueError(f"adstock stages must be ≥ 1 (got {stages})")
    a = np.asarray(x, dtype=float)
    for _ in range(int(stages)):
        a = (1.0 - decay) * _ar1(a, decay)
    return a


def delayed_adstock_grad(x: np.ndarray, decay: float, stages: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """:func:`delayed_adstock` and its derivative with respect to ``decay``."""
    if stages == 1:
        return geometric_adstock_grad(x, decay)
    a = np.asarray(x, dtype=float)
    da = np.zeros_like(a)
    for _ in range(int(stages)):
        # a' = (1-d)·AR(a); da'/dd = (1-d)·AR(da + lag(s)) - s with s = AR(a)
        s = _ar1(a, decay)
        s_lag = np.empty_like(s)
        s_lag[0] = 0.0
        s_lag[1:] = s[:-1]
        da = (1.0 - decay) * _ar1(da + s_lag, decay) - s
        a = (1.0 - decay) * s
    return a, da


def carryover(x: np.ndarray, decay: float, stages: int = 1) -> np.ndarray:
    """The model's carry-over: geometric (``stages`` = 1) or delayed-peak (``stages`` > 1), normalised."""
    return geometric_adstock(x, decay) if stages <= 1 else delayed_adstock(x, decay, stages)


def weibull_adstock(x: np.ndarray, shape: float, scale: float, max_lag: int = 28, normalize: bool = True) -> np.ndarray:
    """Weibull-PDF carry-over with lags 0..max_lag: flexible delayed peaks (e.g. video/TV); weights sum to 1."""
    if shape <= 0 or scale <= 0:
        raise ValueError(f"weibull shape and scale must be > 0 (got shape={shape}, scale={scale})")
    if max_lag < 0:
        raise ValueError(f"max_lag must be ≥ 0 (got {max_lag})")
    lags = np.arange(max_lag + 1, dtype=float) + 1.0
    w = (shape / scale) * (lags / scale) ** (shape - 1) * np.exp(-((lags / scale) ** shape))
    if normalize:
        total = w.sum()
        w = w / total if total > 0 else np.eye(1, max_lag + 1).ravel()
    x = np.asarray(x, dtype=float)
    return lfilter(w, [1.0], x, axis=0)
