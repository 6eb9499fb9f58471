"""Small worlds with one planted structure each, for the MMM's structure tests (written apart from the model's own
transforms: carry-over kernels by convolution, saturation as 1 − exp, effects through the KPI form asked for)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Channel:
    name: str
    mean: float  # mean spend per day
    roas_scale: float  # response at saturation per day, as a multiple of mean spend
    half: float = 1.0  # saturation point (1 − exp) relative to mean spend
    peak: int = 0  # periods from spend to the peak of its effect (0: geometric decay)
    decay: float = 0.4  # geometric decay per period (peak = 0)
    flighted: bool = True
    break_at: float | None = None  # fraction of the history where efficiency changes
    break_ratio: float = 1.0
    vol: float = 0.3  # sd of log spend from period to period (small: an always-on channel the data barely see)


@dataclass
class World:
    data: pd.DataFrame
    spend_cols: list[str]
    truth: dict[str, float]  # removal ROAS per channel
    expected: np.ndarray
    response: object = None  # spend dict → noise-free KPI per period (for lift tests and plans)


def _kernel(ch: Channel, n_lags: int) -> np.ndarray:
    lags = np.arange(n_lags, dtype=float)
    if ch.peak > 0:  # gamma-shaped kernel peaking at `peak`
        k = 3.0
        scale = ch.peak / (k - 1)
        w = lags ** (k - 1) * np.exp(-lags / scale)
    else:
        w = ch.decay**lags
    return w / w.sum()


def make(channels: list[Channel], *, freq: str = "D", periods: int = 730, form: str = "additive", seed: int = 0,
         noise: float = 0.03, holidays: dict[str, float] | None = None, season: float = 0.25,
         start: str = "2023-01-02") -> World:
    """A world with the given channels, KPI ``form`` ("additive" or "log"), yearly season and optional holiday
    effects (date "YYYY-MM-DD" → relative lift on that day or the week containing it)."""
    rng = np.random.default_rng(seed)
    days = 7.0 if freq == "W" else 1.0
    dates = pd.date_range(start, periods=periods, freq="W-MON" if freq == "W" else "D")
    n = len(dates)
    doy = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
    base = 50000.0 * days * (1 + season * np.sin(doy - 1.0)) * (1 + 0.1 * np.arange(n) / n)
    lift = np.zeros(n)
    for d, v in (holidays or {}).items():
        i = int(np.searchsorted(dates.values, np.datetime64(d), side="right") - 1)
        if 0 <= i < n:
            lift[i] += v / (days if days > 1 else 1.0)
    base = base * (1 + lift)
    spend = {}
    for ch in channels:
        x = ch.mean * days * np.exp(rng.normal(0, ch.vol, n))
        if ch.flighted:
            on = np.repeat(rng.random(n // 4 + 1) < 0.6, 4)[:n]
            x = x * on / 0.6
        spend[ch.name] = x

    def expected(sp: dict[str, np.ndarray]) -> np.ndarray:
        eff = np.zeros(n) if form == "additive" else np.ones(n)
        for ch in channels:
            a = np.convolve(sp[ch.name] / days, _kernel(ch, 60 if days == 1 else 12))[:n]
            r = 1 - np.exp(-a / (ch.half * ch.mean))
            eff_c = ch.roas_scale * ch.mean * r * days
            if ch.break_at is not None:
                eff_c = eff_c * np.where(np.arange(n) >= int(ch.break_at * n), ch.break_ratio, 1.0)
            if form == "additive":
                eff = eff + eff_c
            else:
                eff = eff * (1 + eff_c / base.mean())
        return base + eff if form == "additive" else base * eff

    y0 = expected(spend)
    truth = {}
    for ch in channels:
        off = dict(spend)
        off[ch.name] = np.zeros(n)
        truth[ch.name] = float((y0 - expected(off)).sum() / spend[ch.name].sum())
    y = y0 * np.exp(rng.normal(0, noise, n))
    df = pd.DataFrame({"date": dates, "revenue": y, **spend})
    return World(df, [c.name for c in channels], truth, y0, expected)
