"""Media pieces of a benchmark world: carry-over kernels, saturation curves and spend patterns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from scipy.stats import weibull_min

CHANNELS = ["TV", "Search", "Social", "Display", "Video", "Email", "Affiliate", "Podcast", "OOH", "Radio",
            "Influencers", "Retargeting"]
PATTERNS = ["always_on", "flighted", "ramping", "seasonal", "demand"]
PATTERN_P = [0.35, 0.2, 0.15, 0.15, 0.15]
LN2, LN3 = float(np.log(2.0)), float(np.log(3.0))


@dataclass
class Carryover:
    """A normalised carry-over filter (weights sum to 1) applied with lfilter along the time axis."""

    kind: str
    b: np.ndarray
    a: np.ndarray
    info: dict

    def apply(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Carry-over of `x` along `axis` (nothing carried in from before the first period)."""
        return lfilter(self.b, self.a, x, axis=axis)

    def weights(self, n: int) -> np.ndarray:
        """The first `n` kernel weights (the response to a unit impulse)."""
        imp = np.zeros(n)
        imp[0] = 1.0
        return self.apply(imp)


def draw_carryover(rng: np.random.Generator, granularity: str) -> Carryover:
    """Geometric decay, or a delayed peak (Weibull-PDF or peaked 'delayed geometric') 1-3 weeks after spend."""
    daily = granularity == "day"
    kind = str(rng.choice(["geometric", "weibull", "delayed"], p=[0.55, 0.225, 0.225]))
    if kind == "geometric":
        lam = float(rng.uniform(0.0, 0.85 if daily else 0.7))
        return Carryover(kind, np.array([1.0 - lam]), np.array([1.0, -lam]), {"kind": kind, "decay": lam,
                                                                               "peak_lag": 0})
    n_lags = 91 if daily else 13
    lags = np.arange(n_lags + 1, dtype=float)
    while True:
        peak = int(rng.integers(4, 22) if daily else rng.integers(1, 4))
        if kind == "weibull":
            k = float(rng.uniform(1.5, 4.0))
            scale = (peak + 0.5) / ((k - 1.0) / k) ** (1.0 / k)
            w = np.diff(weibull_min.cdf(lags, k, scale=scale))
            info = {"kind": kind, "shape": k, "scale": float(scale)}
        else:
            if daily:
                peak = max(peak, 7)
            alpha = float(rng.uniform(0.3, 0.9))
            unit = 7.0 if daily else 1.0
            w = alpha ** (((lags[:-1] - peak) / unit) ** 2)
            info = {"kind": kind, "alpha": alpha, "theta": peak}
        w = w / w.sum()
        if int(np.argmax(w)) >= 1:
            break
    info.update(peak_lag=int(np.argmax(w)), max_lag=n_lags - 1, target_peak=peak)
    return Carryover(kind, w, np.array([1.0]), info)


def saturate(kind: str, x: np.ndarray, half: float, shape: float) -> np.ndarray:
    """Saturation in [0, 1) with value 0.5 at `half`: Hill, 1 - exp(-lx) ('exponential') or 2/(1+exp(-lx)) - 1."""
    z = np.maximum(x, 0.0) / half
    if kind == "hill":
        zs = z ** shape
        return zs / (1.0 + zs)
    if kind == "exponential":
        return -np.expm1(-LN2 * z)
    return 2.0 / (1.0 + np.exp(-LN3 * z)) - 1.0


def draw_saturation(rng: np.random.Generator, mean_spend: float) -> dict:
    """Hill (shape 0.7-3), exponential or logistic, half-saturation 0.3-4x the channel's mean spend per period."""
    kind = str(rng.choice(["hill", "exponential", "logistic"], p=[0.5, 0.25, 0.25]))
    ratio = float(np.exp(rng.uniform(np.log(0.3), np.log(4.0))))
    shape = float(rng.uniform(0.7, 3.0)) if kind == "hill" else 1.0
    return {"kind": kind, "half_sat_ratio": ratio, "half_sat": ratio * mean_spend, "shape": shape}


def ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """A standardised AR(1) path."""
    x = lfilter([1.0], [1.0, -rho], rng.normal(size=n))
    return (x - x.mean()) / max(x.std(), 1e-12)


def _noise(rng: np.random.Generator, n: int, daily: bool, weekday: np.ndarray | None) -> tuple[np.ndarray, dict]:
    sd, smooth = float(rng.uniform(0.08, 0.3)), float(rng.uniform(0.05, 0.25))
    log_n = sd * rng.normal(size=n) + smooth * ar1(rng, n, 0.97 if daily else 0.8)
    info = {"noise_sd": sd, "smooth_sd": smooth}
    if daily and weekday is not None:
        amp = float(rng.uniform(0.0, 0.2))
        log_n = log_n - amp * np.isin(weekday, [5, 6])
        info["weekend_dip"] = amp
    return np.exp(log_n), info


def _flights(rng: np.random.Generator, n: int, daily: bool) -> tuple[np.ndarray, dict]:
    target = float(rng.uniform(0.2, 0.6))
    on_weeks = float(rng.uniform(2.0, 8.0))
    off_weeks = on_weeks * target / (1.0 - target)
    unit = 7 if daily else 1
    best, best_gap = np.ones(n, bool), 1.0
    for _ in range(30):
        mask, t, on = np.zeros(n, bool), 0, bool(rng.uniform() < 0.6)
        while t < n:
            run = unit * max(1, int(round(rng.exponential(on_weeks if on else off_weeks))))
            mask[t:t + run] = on
            t, on = t + run, not on
        gap = abs((1 - mask.mean()) - target)
        if mask.any() and gap < best_gap:
            best, best_gap = mask, gap
        if 0.2 <= 1 - best.mean() <= 0.6 and best_gap < 0.05:
            break
    return best, {"target_zero_share": target, "zero_share": float(1 - best.mean()), "on_weeks": on_weeks}


def draw_spend_shape(rng: np.random.Generator, kind: str, n: int, daily: bool, season: np.ndarray,
                     demand: np.ndarray, weekday: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """A non-negative spend path with mean 1 following pattern `kind` (see PATTERNS)."""
    noise, info = _noise(rng, n, daily, weekday)
    info["kind"] = kind
    t = np.arange(n, dtype=float)
    if kind == "always_on":
        shape = noise
    elif kind == "flighted":
        mask, f_info = _flights(rng, n, daily)
        shape = noise * mask
        info.update(f_info)
    elif kind == "ramping":
        growth = float(rng.uniform(3.0, 10.0))
        start = int(rng.uniform(0.05, 0.25) * n) if rng.uniform() < 0.4 else 0
        frac = np.clip((t - start) / max(n - 1 - start, 1), 0.0, 1.0)
        shape = noise * np.exp(np.log(growth) * frac) * (t >= start)
        info.update(growth=growth, launch_period=start)
    elif kind == "seasonal":
        power = float(rng.uniform(1.0, 2.5))
        shape = noise * (season / season.mean()) ** power
        info["power"] = power
    else:
        lag = int(rng.integers(7, 29) if daily else rng.integers(1, 5))
        power = float(rng.uniform(0.8, 2.0))
        lagged = demand[np.maximum(np.arange(n) - lag, 0)]
        shape = noise * (lagged / lagged.mean()) ** power
        info.update(lag=lag, power=power)
    return shape / shape.mean(), info


def correlate(a: np.ndarray, b: np.ndarray, target: float) -> tuple[np.ndarray, float, float]:
    """Blend b towards a (b' = w a + (1 - w) b, means kept) so that corr(a, b') is as close as possible to target."""
    best = (b, float(np.corrcoef(a, b)[0, 1]), 0.0)
    for w in np.linspace(0.0, 1.0, 201):
        mix = w * a / a.mean() + (1 - w) * b / b.mean()
        r = float(np.corrcoef(a, mix)[0, 1])
        if abs(r - target) < abs(best[1] - target):
            best = (mix / mix.mean(), r, float(w))
    return best
