"""The KPI of a benchmark world: its noise-free response to spend, the controls beneath it and its noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from bench.worlds.media import Carryover, ar1, saturate

FORMS = ["additive", "multiplicative", "loglinear"]


@dataclass
class ChannelResponse:
    """One channel's true response: carry-over, saturation, scale and its effectiveness over time."""

    carry: Carryover
    sat_kind: str
    half: float
    shape: float
    beta: float
    eff: np.ndarray
    order: str  # 'adstock_first' or 'saturation_first'

    def effect(self, x: np.ndarray) -> np.ndarray:
        """Effect per period for spend `x` (time on the last axis), before the scale `beta`."""
        if self.order == "adstock_first":
            return saturate(self.sat_kind, self.carry.apply(x), self.half, self.shape)
        return self.carry.apply(saturate(self.sat_kind, x, self.half, self.shape))


@dataclass
class KpiModel:
    """Expected KPI = base (+ | x Π(1+·) | x exp Σ) media, by form; `base` holds everything that is not media."""

    form: str
    base: np.ndarray
    channels: list[ChannelResponse]

    def media(self, spend: np.ndarray) -> np.ndarray:
        """Per-channel media terms, shape (..., n, C) for spend (..., n, C)."""
        x = np.maximum(np.asarray(spend, float), 0.0)
        n, c = len(self.base), len(self.channels)
        if x.shape[-2:] != (n, c):
            raise ValueError(f"spend must have shape (..., {n}, {c}), got {x.shape}")
        out = np.empty(x.shape)
        for j, ch in enumerate(self.channels):
            out[..., j] = ch.beta * ch.eff * ch.effect(x[..., j])
        return out

    def __call__(self, spend: np.ndarray) -> np.ndarray:
        m = self.media(spend)
        if self.form == "additive":
            return self.base + m.sum(axis=-1)
        if self.form == "multiplicative":
            return self.base * np.prod(1.0 + m, axis=-1)
        return self.base * np.exp(m.sum(axis=-1))

    def contributions(self, spend: np.ndarray) -> np.ndarray:
        """Removal contribution per channel: Σ_t E[y | spend] - E[y | spend with that channel zeroed throughout]."""
        x = np.asarray(spend, float)
        c = x.shape[1]
        stack = np.repeat(x[None], c + 1, axis=0)
        for j in range(c):
            stack[j + 1, :, j] = 0.0
        tot = self(stack).sum(axis=1)
        return tot[0] - tot[1:]

    def calibrate(self, spend: np.ndarray, target: np.ndarray, iters: int = 12) -> None:
        """Set each channel's scale so that its removal contribution is close to `target`."""
        for j, ch in enumerate(self.channels):
            g = (ch.eff * ch.effect(spend[:, j])).sum() if self.form == "additive" else \
                (self.base * ch.eff * ch.effect(spend[:, j])).sum()
            ch.beta = float(target[j] / max(g, 1e-12))
        if self.form == "additive":
            return
        for _ in range(iters):
            got = self.contributions(spend)
            for j, ch in enumerate(self.channels):
                ch.beta *= float(target[j] / max(got[j], 1e-12))


# ---------------------------------------------------------------- controls


def _std(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(x.std(), 1e-12)


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(np.pad(x, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")


def draw_controls(rng: np.random.Generator, n: int, daily: bool, spend: dict[str, np.ndarray],
                  form: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """0-3 observed controls (price: negative effect; competitor index: negative; macro index: positive).

    Returns the columns, their log effects on the base (before scaling for the additive form) and their info.
    """
    k = int(rng.choice([0, 1, 2, 3], p=[0.2, 0.3, 0.3, 0.2]))
    names = [str(v) for v in rng.choice(["price", "competitor_index", "macro_index"], size=k, replace=False)]
    cols, effects, info = {}, {}, {}
    rho = 0.98 if daily else 0.85
    chans = list(spend)
    for name in sorted(names):
        corr_with = str(rng.choice(chans)) if rng.uniform() < 0.45 else None
        if name == "price":
            p0 = float(rng.uniform(15, 120))
            level = np.ones(n)
            for t in rng.integers(int(0.1 * n), int(0.9 * n), size=int(rng.integers(1, 4))):
                level[t:] *= 1 + float(rng.choice([-1, 1])) * float(rng.uniform(0.03, 0.15))
            dips = np.zeros(n)
            unit = 7 if daily else 1
            if corr_with is not None:
                s = _smooth(spend[corr_with], 7 if daily else 2)
                hot = s >= np.quantile(s, 0.85)
                dips[hot & (rng.uniform(size=n) < 0.7)] = float(rng.uniform(0.1, 0.25))
            for t in rng.integers(0, n, size=int(rng.integers(2, 6) * n / (365 if daily else 52))):
                dips[t:t + unit * int(rng.integers(1, 4))] = float(rng.uniform(0.1, 0.25))
            rel = level * (1 - dips) * np.exp(0.01 * rng.normal(size=n))
            col = np.round(p0 * rel, 2)
            e = float(rng.uniform(-2.0, -0.5))
            rel = col / col.mean()
            eff = e * np.log(rel) if form == "multiplicative" else e * (rel - 1.0)
            info[name] = {"elasticity": e, "mean": float(col.mean())}
        else:
            z = ar1(rng, n, rho)
            if corr_with is not None:
                r = float(rng.uniform(0.4, 0.8))
                z = _std(r * _std(_smooth(spend[corr_with], 7 if daily else 2)) + np.sqrt(1 - r * r) * z)
            if name == "competitor_index":
                g = -float(rng.uniform(0.02, 0.08))
                col = np.round(100 + 15 * z, 2)
            else:
                z = _std(_smooth(np.cumsum(rng.normal(size=n)), 30 if daily else 5) + 0.3 * z)
                g = float(rng.uniform(0.02, 0.06))
                col = np.round(100 + 8 * z, 2)
            eff = g * _std(col)
            info[name] = {"effect_per_sd": g}
        info[name]["correlated_with"] = corr_with
        info[name]["max_abs_corr_with_spend"] = float(max(abs(np.corrcoef(col, s)[0, 1]) for s in spend.values()
                                                          if s.std() > 0))
        cols[name], effects[name] = col, eff
    return cols, effects, info


# ---------------------------------------------------------------- noise


def draw_noise(rng: np.random.Generator) -> dict:
    """Noise 3-15% of the KPI level, multiplicative or additive, AR(1) in about a third of worlds."""
    return {"kind": str(rng.choice(["multiplicative", "additive"], p=[0.55, 0.45])),
            "sigma": float(rng.uniform(0.03, 0.15)),
            "ar1": float(rng.uniform(0.3, 0.8)) if rng.uniform() < 0.35 else 0.0}


def apply_noise(rng: np.random.Generator, expected: np.ndarray, noise: dict) -> tuple[np.ndarray, int]:
    """Noisy KPI (floored at 5% of its expectation) and how many periods hit the floor."""
    rho, sig = noise["ar1"], noise["sigma"]
    e = rng.normal(size=len(expected))
    if rho > 0:
        e[1:] *= np.sqrt(1 - rho * rho)
        e = lfilter([1.0], [1.0, -rho], e)
    if noise["kind"] == "multiplicative":
        y = expected * np.exp(sig * e - 0.5 * sig * sig)
    else:
        y = expected + sig * expected.mean() * e
    floor = 0.05 * expected
    return np.maximum(y, floor), int((y < floor).sum())
