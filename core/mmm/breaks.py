"""Changes in a channel's efficiency that no factor names: a scan for one break in each channel's effect.

A platform's tracking change, a creative that wore out, a price change at a marketplace: the channel's response to
the same spend changes from some date on, and nothing in the data says so. With the carry-over and saturation of
the fit held fixed, each channel's coefficient is split at every candidate date (every four weeks, leaving 15% of
the history at each end) and the drop in squared error is compared with the residual variance: a sup-F scan
(Andrews, 1993). A break is reported when the statistic clears a threshold well above the 1% critical value for one
restriction (12.4), since residuals in time are rarely independent, and the change is at least 20%. It is a finding
for the user, with the date and size; the fit itself keeps one efficiency unless a "change" factor names the date.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import nnls

from core.mmm.design import Prepared
from core.mmm.estimate import Solution
from core.mmm.spec import Spec

__all__ = ["efficiency_breaks", "BREAK_THRESHOLD"]

BREAK_THRESHOLD = 25.0  # sup-F statistic (1 restriction; 1% critical value 12.4 under independence)
MIN_CHANGE = 0.2
TRIM = 0.15


def _sse(prob, H: np.ndarray) -> tuple[float, np.ndarray]:
    Hw = H * prob.sw[:, None]
    BtH = prob.Bw.T @ Hw
    KBtH = prob.Kinv @ BtH
    Q = Hw.T @ Hw - BtH.T @ KBtH
    b = Hw.T @ prob.yw - BtH.T @ prob.Ky
    Q = 0.5 * (Q + Q.T) + np.eye(len(b)) * 1e-10 * (np.trace(Q) + 1e-12)
    L = np.linalg.cholesky(Q)
    beta, _ = nnls(L.T, np.linalg.solve(L, b), maxiter=50 * len(b))
    return float(prob.c0 - 2 * b @ beta + beta @ Q @ beta), beta


def efficiency_breaks(spec: Spec, sol: Solution, prep: Prepared) -> list[dict[str, Any]]:
    """Per channel, the most likely unnamed efficiency break if it is clear (see module docs), as findings."""
    prob = spec.problem(prior=False)
    H, _ = prob.features(sol.theta)
    Hs = prob.expand(H)
    n, K = Hs.shape
    try:
        sse0, beta0 = _sse(prob, Hs)
    except np.linalg.LinAlgError:
        return []
    dof = max(n - spec.B.shape[1] - 4 * spec.x.shape[1] - 1, 1)
    s2 = sse0 / dof
    step = max(int(round(28 / spec.days)), 1)
    lo, hi = int(TRIM * n), int((1 - TRIM) * n)
    out = []
    for c, name in enumerate(prep.channels):
        k = int(np.nonzero(spec.seg[0] == c)[0][-1])
        if beta0[k] <= 0:
            continue
        active = spec.seg[1][:, k] > 0
        best = (0.0, None, None)
        for tau in range(lo, hi, step):
            before, after = active & (np.arange(n) < tau), active & (np.arange(n) >= tau)
            if (prep.spend[before, c] > 0).sum() < 2 * step or (prep.spend[after, c] > 0).sum() < 2 * step:
                continue
            H2 = np.column_stack([Hs, Hs[:, k] * after])
            H2[:, k] = Hs[:, k] * before
            try:
                sse1, b1 = _sse(prob, H2)
            except np.linalg.LinAlgError:
                continue
            stat = (sse0 - sse1) / s2
            if stat > best[0] and b1[k] > 0:
                best = (stat, tau, float(b1[-1] / b1[k]))
        stat, tau, ratio = best
        if tau is None or stat < BREAK_THRESHOLD or abs(ratio - 1) < MIN_CHANGE:
            continue
        date = prep.dates[tau].date()
        out.append({"channel": name, "date": str(date), "ratio": ratio, "statistic": float(stat),
                    "sentence": f"{name}: its efficiency seems to have changed around {date} ({ratio - 1:+.0%} "
                                "revenue per dollar after it) and nothing in the data names a reason; check for a "
                                "tracking, creative or pricing change there, and name it as a 'change' factor so "
                                "the model estimates each period separately."})
    return out
