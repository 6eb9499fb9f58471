"""Small synthetic marketing-mix worlds with planted truth, for testing and benchmarking the MMM.

Independent of the TechStyle demo generator: any number of channels (1–20), daily or weekly periods, configurable
adstock decay (per period), Hill half-saturation/shape, betas (maximum daily incremental KPI), baseline trend and
seasonality, holidays (as an ``external_factors`` table) and control variables. Spend is stated per period; curves and
optimal spends in the truth are in **daily** units (steady-state daily incremental KPI at a constant daily spend).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.mmm.adstock import geometric_adstock
from core.mmm.saturation import hill

__all__ = ["SynthChannel", "SynthParams", "SynthWorld", "make_world", "default_daily", "default_weekly"]


@dataclass
class SynthChannel:
    """One channel: mean daily spend, growth over the span, carry-over decay per period, Hill curve, beta."""

    name: str
    spend: float  # mean daily spend
    decay: float
    half: float
    shape: float
    beta: float  # maximum daily incremental KPI (response = beta * hill(daily spend))
    growth: float = 0.0  # relative spend change from start to end
    volatility: float = 0.35  # sd of log spend (AR(1) noise)
    pause_prob: float = 0.02  # chance per period that a pause (a few periods at zero) starts
    follows: str | None = None  # spend = that channel's spend (rescaled) × lognormal(volatility): collinear spends


@dataclass
class SynthParams:
    channels: list[SynthChannel]
    start: str = "2023-01-02"
    periods: int = 730
    freq: str = "D"  # "D" or "W"
    baseline: float = 20000.0  # daily baseline KPI
    trend: float = 0.15  # relative baseline growth over the span
    yearly_amp: float = 0.2
    weekly_amp: float = 0.1  # daily data only
    noise_sd: float = 0.04  # relative to the baseline
    holidays: dict[str, tuple[str, float]] = field(default_factory=lambda: {"11-24": ("Black Friday", 1.8),
                                                                           "12-24": ("Christmas Eve", 1.4)})
    controls: dict[str, float] = field(default_factory=dict)  # name → daily KPI effect per 1 sd
    correlation: float = 0.0  # share of a common factor in the channels' log spend (collinearity)


@dataclass
class SynthWorld:
    data: pd.DataFrame  # wide: date, kpi "revenue", one spend column per channel, controls
    external_factors: pd.DataFrame
    truth: dict
    spend_cols: list[str]
    control_cols: list[str]


def _spend_path(rng: np.random.Generator, ch: SynthChannel, n: int, common: np.ndarray, rho: float,
                days: float) -> np.ndarray:
    e = np.empty(n)
    z = rng.normal(size=n)
    e[0] = z[0]
    for t in range(1, n):
        e[t] = 0.6 * e[t - 1] + np.sqrt(1 - 0.36) * z[t]
    e = np.sqrt(1 - rho) * e + np.sqrt(rho) * common
    level = 1.0 + ch.growth * (np.arange(n) / max(n - 1, 1) - 0.5)
    x = level * np.exp(ch.volatility * e - ch.volatility**2 / 2)
    t = 0
    while t < n:
        if rng.random() < ch.pause_prob:
            k = int(rng.integers(2, 8 if days == 1 else 3))
            x[t:t + k] = 0.0
            t += k
        t += 1
    return ch.spend * x / max(np.mean(x), 1e-9) * days  # per-period spend


def _optimal(beta: float, half: float, shape: float, target: float = 1.0) -> float:
    """Largest daily spend with marginal response beta * hill'(s) ≥ target (0 if never)."""
    grid = np.linspace(0, 20 * half, 20001)[1:]
    r = (grid / half) ** shape
    marg = beta * shape * r / (grid * (1 + r) ** 2)
    ok = np.nonzero(marg >= target)[0]
    return float(grid[ok[-1]]) if len(ok) else 0.0


def make_world(p: SynthParams, seed: int = 0) -> SynthWorld:
    """Generate the world: KPI per period = baseline + Σ channels + controls + noise (all additive)."""
    if p.freq not in ("D", "W"):
        raise ValueError(f"freq must be 'D' or 'W' (got {p.freq!r})")
    rng = np.random.default_rng(seed)
    days = 1.0 if p.freq == "D" else 7.0
    dates = pd.date_range(p.start, periods=p.periods, freq="D" if p.freq == "D" else "W-MON")
    n = len(dates)
    t = np.arange(n) / max(n - 1, 1)
    doy = dates.day_of_year.to_numpy() / 365.25
    season = 1 + p.yearly_amp * (np.sin(2 * np.pi * doy) * 0.7 + np.cos(4 * np.pi * doy) * 0.4)
    base = p.baseline * (1 + p.trend * (t - 0.5)) * season
    if p.freq == "D":
        base = base * (1 + p.weekly_amp * np.cos(2 * np.pi * dates.day_of_week.to_numpy() / 7))
    rows = []
    hol = np.zeros(n)
    for i, d in enumerate(dates):
        days_in = [d + pd.Timedelta(days=k) for k in range(int(days))]
        for dd in days_in:
            key = dd.strftime("%m-%d")
            if key in p.holidays:
                name, mult = p.holidays[key]
                rows.append({"date": d, "factor_type": "holiday", "factor_name": name, "impact_multiplier": mult,
                             "description": f"{name} (synthetic)"})
                hol[i] += (mult - 1) * p.baseline
    base = base * days + hol
    ctrl = {}
    ctrl_effect = np.zeros(n)
    for name, eff in p.controls.items():
        c = np.cumsum(rng.normal(size=n)) * 0.2 + rng.normal(size=n)
        c = (c - c.mean()) / c.std()
        ctrl[name] = 100 + 10 * c
        ctrl_effect += eff * c * days
    common = rng.normal(size=n)
    truth_ch: dict[str, dict] = {}
    data = {"date": dates, "revenue": np.zeros(n)}
    total = base + ctrl_effect
    for ch in p.channels:
        if ch.follows is not None:
            if ch.follows not in data:
                raise ValueError(f"channel {ch.name!r} follows unknown or later channel {ch.follows!r}")
            lead = data[ch.follows] * np.exp(rng.normal(0, ch.volatility, n))
            x = lead * ch.spend * days / max(lead.mean(), 1e-9)
        else:
            x = _spend_path(rng, ch, n, common, p.correlation, days)
        a = geometric_adstock(x / days, ch.decay)
        contrib = days * ch.beta * hill(a, ch.half, ch.shape)
        total = total + contrib
        data[ch.name] = x
        grid = np.linspace(0, 3 * max(ch.spend, ch.half), 61)
        cur = float(np.mean(x[-(28 if days == 1 else 4):]) / days)
        r = (cur / ch.half) ** ch.shape
        truth_ch[ch.name] = {
            "spend_total": float(x.sum()), "incremental_revenue_total": float(contrib.sum()),
            "incremental_revenue_daily": contrib.tolist(), "roas": float(contrib.sum() / max(x.sum(), 1e-9)),
            "adstock": {"type": "geometric", "decay": ch.decay},
            "saturation": {"type": "hill", "half": ch.half, "shape": ch.shape}, "beta": ch.beta,
            "current_daily_spend": cur,
            "response_curve": {"spend": grid.tolist(), "revenue": (ch.beta * hill(grid, ch.half, ch.shape)).tolist()},
            "marginal_roas_at_current": float(ch.beta * ch.shape * r / (cur * (1 + r) ** 2)) if cur > 0 else None,
            "optimal_daily_spend": _optimal(ch.beta, ch.half, ch.shape), "fixed_cost": False,
        }
    noise = rng.normal(0, p.noise_sd * p.baseline * np.sqrt(days), n)
    data["revenue"] = total + noise
    df = pd.DataFrame(data)
    for name, v in ctrl.items():
        df[name] = v
    ef = pd.DataFrame(rows, columns=["date", "factor_type", "factor_name", "impact_multiplier", "description"])
    truth = {"generator": "mmm_synth", "seed": seed, "freq": p.freq, "start": str(dates[0].date()),
             "end": str(dates[-1].date()), "baseline": {"total": float(base.sum() + ctrl_effect.sum())},
             "kpi_total": float(df["revenue"].sum()), "channels": truth_ch}
    return SynthWorld(df, ef, truth, [c.name for c in p.channels], list(p.controls))


def default_daily(seed: int = 0, periods: int = 730) -> SynthWorld:
    """Two years daily, five channels with distinct carry-over and saturation."""
    chans = [
        SynthChannel("Search", 5000, 0.3, 4000, 1.3, 16000, growth=0.2),
        SynthChannel("Social", 3000, 0.5, 3500, 1.0, 11000, growth=-0.2),
        SynthChannel("Video", 2000, 0.7, 2500, 1.8, 7000, growth=0.8),
        SynthChannel("Display", 1000, 0.2, 1500, 1.0, 2500),
        SynthChannel("Partners", 800, 0.4, 900, 1.2, 3200, growth=0.3),
    ]
    return make_world(SynthParams(chans, periods=periods), seed=seed)


def default_weekly(seed: int = 1, periods: int = 156, controls: bool = True) -> SynthWorld:
    """Three years weekly, four channels with other parameters, plus two control variables."""
    chans = [
        SynthChannel("TV", 8000, 0.6, 9000, 1.5, 30000, volatility=0.5, pause_prob=0.06),
        SynthChannel("Paid Search", 4000, 0.1, 3000, 1.0, 12000, growth=0.4),
        SynthChannel("Radio", 1500, 0.4, 2000, 2.0, 4500, volatility=0.5, pause_prob=0.05),
        SynthChannel("Social", 2500, 0.3, 4000, 0.9, 9000, growth=-0.3),
    ]
    ctrl = {"price_index": -1500.0, "competitor_spend": -800.0} if controls else {}
    return make_world(SynthParams(chans, start="2022-01-03", periods=periods, freq="W", baseline=40000,
                                  trend=0.25, yearly_amp=0.25, noise_sd=0.03, controls=ctrl), seed=seed)
