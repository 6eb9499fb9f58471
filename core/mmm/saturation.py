"""Hill saturation: diminishing (or S-shaped, shape > 1) response to adstocked spend."""

from __future__ import annotations

import numpy as np

__all__ = ["hill", "hill_grad", "hill_derivative"]


def hill(x: np.ndarray | float, half: float, shape: float) -> np.ndarray:
    """``x^shape / (x^shape + half^shape)`` in [0, 1); ``half`` is the spend giving half the maximum response."""
    if half <= 0 or shape <= 0:
        raise ValueError(f"hill half and shape must be > 0 (got half={half}, shape={shape})")
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    r = (x / half) ** shape
    return r / (1.0 + r)


def hill_derivative(x: np.ndarray | float, half: float, shape: float) -> np.ndarray:
    """d hill / d x: the marginal response per unit of (steady-state) spend."""
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    r = (x / half) ** shape
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(x > 0, shape * r / (x * (1.0 + r) ** 2), 0.0)
    if shape < 1:  # infinite slope at 0: report the slope a hair above 0
        d = np.where(x > 0, d, shape * (1e-9 / half) ** shape / 1e-9)
    elif shape == 1:
        d = np.where(x > 0, d, 1.0 / half)
    return d


def hill_grad(x: np.ndarray, half: float, shape: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hill value and its partial derivatives with respect to x, half and shape (for gradient-based fits)."""
    x = np.maximum(np.asarray(x, dtype=float), 1e-300)  # half and shape may be per-column arrays
    lr = np.log(x) - np.log(half)
    r = np.exp(np.minimum(shape * lr, 700.0))
    h = r / (1.0 + r)
    g = h * (1.0 - h)  # = r/(1+r)^2
    dx = shape * g / x
    dhalf = -shape * g / half
    dshape = g * lr
    return h, dx, dhalf, dshape
