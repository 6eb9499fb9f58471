"""Hill saturation: diminishing (or S-shaped, shape > 1) response to adstocked spend.

The one implementation of the curve in the code base: the fit, the artifact's curves, the optimizer, the what-if
simulator and the forecast all call these functions. Parameters broadcast (one curve per bootstrap draw or per
column), and the value is computed on the log scale so very small or large spends neither overflow nor divide by 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hill", "hill_grad", "hill_derivative"]


def _check(half: np.ndarray | float, shape: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    h, k = np.asarray(half, dtype=float), np.asarray(shape, dtype=float)
    if np.any(~(h > 0)) or np.any(~(k > 0)):
        raise ValueError(f"hill half and shape must be > 0 (got half={half}, shape={shape})")
    return h, k


def hill(x: np.ndarray | float, half: np.ndarray | float, shape: np.ndarray | float) -> np.ndarray:
    """``x^shape / (x^shape + half^shape)`` in [0, 1); ``half`` is the spend giving half the maximum response."""
    h, k = _check(half, shape)
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        r = np.exp(np.minimum(k * (np.log(np.maximum(x, 0.0)) - np.log(h)), 700.0))
    return r / (1.0 + r)


def hill_derivative(x: np.ndarray | float, half: np.ndarray | float, shape: np.ndarray | float) -> np.ndarray:
    """d hill / d x: the marginal response per unit of (steady-state) spend (broadcasting).

    At x = 0 the slope is 0 for shape > 1, 1/half for shape = 1, and (shape < 1, infinite in theory) the slope a
    hair above 0, so a marginal ROAS is always a finite number.
    """
    h, k = _check(half, shape)
    x = np.maximum(np.asarray(x, dtype=float), 0.0)
    xs = np.maximum(x, 1e-9)
    r = np.exp(np.minimum(k * (np.log(xs) - np.log(h)), 700.0))
    d = k * r / (xs * (1.0 + r) ** 2)
    at0 = np.where(k < 1, d, np.where(k == 1, 1.0 / h, 0.0))
    return np.where(x > 0, d, at0)


def hill_grad(x: np.ndarray, half: np.ndarray | float, shape: np.ndarray | float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
