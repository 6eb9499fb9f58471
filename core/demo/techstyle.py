"""TechStyle Fashion: a seeded synthetic DTC fashion brand with planted marketing-mix truth.

Two years of daily data for five channels (Google Ads, Meta Ads, Email, TikTok, Affiliate). Each channel's true
incremental revenue is ``beta · efficiency_t · demand_t^gamma · hill(adstock(spend), half, shape)``; the business's
revenue is a seasonal baseline plus those effects plus noise. The ad platforms report their own (over-claiming,
last-click-like) revenue, which is *not* the truth. Everything that was planted is returned as ``truth`` so models
can be checked against it, and every knob lives in :class:`TechStyleParams` so tests can build other worlds.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from core.mmm.adstock import geometric_adstock
from core.mmm.saturation import hill, hill_derivative
from core.serialize import json_default

__all__ = [
    "ChannelParams",
    "TechStyleParams",
    "TechStyleData",
    "generate_techstyle",
    "aggregate_weekly",
    "true_revenue",
    "write_techstyle",
    "default_channels",
]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class ChannelParams:
    """One channel's spend path, true response and platform reporting.

    ``kind`` is ``"paid"`` (spend drives response), ``"email"`` (fixed monthly cost; response driven by sends to a
    list growing ``list_growth`` per month, best days from ``weekday_spend``) or ``"affiliate"`` (commission on the
    platform-reported revenue; activity follows brand strength and demand).
    """

    name: str
    spend_end: float  # mean daily spend over the last 28 days (email: monthly cost / 30.4)
    spend_start: float  # typical daily spend at the start (before budget steps and seasonality)
    decay: float  # geometric adstock decay per day
    half: float  # Hill half-saturation (daily spend)
    shape: float  # Hill shape
    beta: float  # maximum daily incremental revenue at efficiency 1 and demand index 1
    kind: str = "paid"
    weekday_spend: tuple[float, ...] = (1.0,) * 7  # Mon..Sun spend (email: sends) pattern
    efficiency_start: float = 1.0  # true efficiency multiplier path, linear from start to end of the data
    efficiency_end: float = 1.0
    privacy_loss: float = 0.0  # fraction of efficiency lost after the privacy change
    platform_roas: float = 3.0  # revenue per dollar the platform reports (affiliate: 1 / commission)
    cpm: float = 15.0
    ctr: float = 0.012
    aov: float = 85.0
    new_share: float = 0.5  # share of reported conversions that are new customers
    volatility: float = 0.18  # sd of log budget steps
    step_days: tuple[int, int] = (14, 49)  # budget steps last this many days (min, max)
    pulses_per_year: float = 6.0  # campaign bursts
    pause_prob: float = 0.004  # chance per day that a short pause starts
    daily_noise: float = 0.12  # sd of daily log spend noise
    spend_seasonality: float = 0.35  # spend follows demand^this (budgets follow the season)
    list_growth: float = 0.0  # email list growth per month
    commission: float = 0.0  # affiliate commission rate
    blasts_per_month: float = 0.0  # email: extra promotional sends on random days


DEMO_JOURNEY_INTENT = 1.0  # sd of log baseline hazard across people; also tilts which channels reach them


def default_channels() -> list[ChannelParams]:
    """The five TechStyle channels (Google saturating past ~$5K/day, Meta hit by the privacy change, ...)."""
    return [
        ChannelParams("Google Ads", spend_end=6250, spend_start=5200, decay=0.3, half=2500, shape=2.0, beta=15625,
                      weekday_spend=(1.05, 1.05, 1.0, 1.0, 0.98, 0.95, 0.97), platform_roas=3.5, cpm=25, ctr=0.03,
                      aov=88, new_share=0.45, pulses_per_year=5, volatility=0.25),
        ChannelParams("Meta Ads", spend_end=2200, spend_start=2300, decay=0.45, half=2400, shape=1.0, beta=19000,
                      weekday_spend=(0.9, 0.9, 0.95, 1.1, 1.12, 1.1, 0.93), privacy_loss=0.3, platform_roas=3.6,
                      cpm=18, ctr=0.011, aov=82, new_share=0.55, pulses_per_year=7, volatility=0.22),
        ChannelParams("Email", spend_end=260, spend_start=260, decay=0.2, half=260, shape=1.1, beta=26500,
                      kind="email", weekday_spend=(0.25, 1.0, 0.25, 1.0, 0.3, 0.15, 0.15), platform_roas=45.0,
                      cpm=1.0, ctr=0.025, aov=90, new_share=0.1, volatility=0.0, pulses_per_year=0,
                      pause_prob=0.0, daily_noise=0.3, spend_seasonality=0.0, list_growth=0.02, blasts_per_month=2.5),
        ChannelParams("TikTok", spend_end=4000, spend_start=400, decay=0.35, half=3500, shape=1.3, beta=13500,
                      weekday_spend=(0.95, 0.95, 1.0, 1.0, 1.05, 1.05, 1.0), efficiency_start=0.7,
                      efficiency_end=1.0, platform_roas=1.6, cpm=10, ctr=0.009, aov=70, new_share=0.75,
                      pulses_per_year=8, volatility=0.28),
        ChannelParams("Affiliate", spend_end=390, spend_start=300, decay=0.25, half=900, shape=1.0, beta=4600,
                      kind="affiliate", platform_roas=12.5, cpm=4.0, ctr=0.02, aov=92, new_share=0.35,
                      volatility=0.4, pulses_per_year=4, pause_prob=0.0, daily_noise=0.25, spend_seasonality=0.1,
                      commission=0.08),
    ]


@dataclass
class TechStyleParams:
    """Every knob of the world. Monthly seasonality is a demand index (1.0 = average month)."""

    channels: list[ChannelParams] = field(default_factory=default_channels)
    days: int = 730
    baseline: float = 10000.0  # non-media revenue per day at demand 1 at the start
    baseline_growth: float = 0.08  # per year (brand strength)
    month_index: tuple[float, ...] = (0.9, 0.88, 1.0, 1.02, 1.05, 0.9, 0.35, 0.35, 0.98, 1.05, 1.2, 2.0)
    weekday_index: tuple[float, ...] = (0.97, 1.0, 0.98, 1.0, 1.02, 1.04, 0.99)
    media_demand_elasticity: float = 0.25  # media effects scale with demand^this
    black_friday: float = 5.0  # demand multiplier on Black Friday .. Cyber Monday
    cyber_monday: float = 4.0
    christmas: float = 0.45  # Christmas day (shops closed, few orders)
    prime_day: float = 1.25
    promotions_per_year: int = 4
    promotion_lift: tuple[float, float] = (1.15, 1.35)
    privacy_change_day: int = 150  # days after the start
    noise_sd: float = 0.035  # relative sd of daily revenue noise
    kpi_aov: float = 86.0
    kpi_new_share: float = 0.42


@dataclass
class TechStyleData:
    """The generated tables and the planted truth (see contract A)."""

    marketing: pd.DataFrame
    kpis: pd.DataFrame
    campaigns: pd.DataFrame
    external_factors: pd.DataFrame
    truth: dict[str, Any]


# --- calendar -------------------------------------------------------------------------------------------------
def _black_friday(year: int) -> date:
    nov1 = date(year, 11, 1)
    first_thu = nov1 + timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + timedelta(days=22)


def _prime_day(year: int) -> date:
    jul1 = date(year, 7, 1)
    return jul1 + timedelta(days=(1 - jul1.weekday()) % 7 + 7)  # second Tuesday of July


def _events(dates: pd.DatetimeIndex, p: TechStyleParams, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Dated demand events (one row per day) and the privacy change."""
    rows: list[dict[str, Any]] = []
    first, last = dates[0].date(), dates[-1].date()

    def add(d: date, ftype: str, name: str, mult: float, desc: str) -> None:
        if first <= d <= last:
            rows.append({"date": pd.Timestamp(d), "factor_type": ftype, "factor_name": name,
                         "impact_multiplier": round(mult, 3), "description": desc})

    for year in range(first.year, last.year + 1):
        bf = _black_friday(year)
        add(bf - timedelta(days=1), "holiday", "Thanksgiving", 1.4, "Thanksgiving: early Black Friday deals")
        add(bf, "shopping_event", "Black Friday", p.black_friday, "Black Friday sale, site-wide discounts")
        add(bf + timedelta(days=1), "shopping_event", "Black Friday weekend", p.black_friday * 0.9,
            "Black Friday weekend sale")
        add(bf + timedelta(days=2), "shopping_event", "Black Friday weekend", p.black_friday * 0.85,
            "Black Friday weekend sale")
        add(bf + timedelta(days=3), "shopping_event", "Cyber Monday", p.cyber_monday, "Cyber Monday sale")
        add(bf + timedelta(days=4), "shopping_event", "Cyber week", 1.5, "Cyber week extended deals")
        add(date(year, 12, 24), "holiday", "Christmas Eve", 0.75, "Christmas Eve: last-minute orders only")
        add(date(year, 12, 25), "holiday", "Christmas", p.christmas, "Christmas Day")
        add(date(year, 12, 26), "shopping_event", "Boxing Day", 1.3, "Boxing Day sale")
        pd_ = _prime_day(year)
        for k in range(2):
            add(pd_ + timedelta(days=k), "competitor", "Prime Day", p.prime_day,
                "Marketplace Prime Day: category-wide demand spike")
        add(date(year, 2, 14) - timedelta(days=3), "holiday", "Valentine's Day", 1.1, "Valentine's gifting")
        for _ in range(p.promotions_per_year):
            start = date(year, 1, 1) + timedelta(days=int(rng.integers(20, 300)))
            lift = float(rng.uniform(*p.promotion_lift))
            length = int(rng.integers(3, 6))
            for k in range(length):
                add(start + timedelta(days=k), "promotion", f"Promotion {start.isoformat()}", lift,
                    f"{length}-day site promotion")
    if 0 <= p.privacy_change_day < len(dates):
        meta = [c for c in p.channels if c.privacy_loss > 0]
        if meta:
            add(dates[p.privacy_change_day].date(), "platform_change", "Privacy change", 1.0 - meta[0].privacy_loss,
                f"Mobile privacy change: {', '.join(c.name for c in meta)} loses ad tracking and targeting; "
                f"true efficiency down {meta[0].privacy_loss:.0%}")
    rows.sort(key=lambda r: r["date"])
    return rows


def _smooth_months(dates: pd.DatetimeIndex, index: tuple[float, ...]) -> np.ndarray:
    """Monthly index as a smooth daily curve: periodic linear interpolation between mid-month anchors."""
    idx = np.asarray(index, dtype=float)
    if idx.shape != (12,):
        raise ValueError(f"month_index needs 12 values (got {len(idx)})")
    anchors = (np.arange(12) + 0.5) / 12.0
    x = np.concatenate([anchors - 1.0, anchors, anchors + 1.0])
    y = np.tile(idx, 3)
    frac = (dates.day_of_year.to_numpy() - 0.5) / np.where(dates.is_leap_year, 366.0, 365.0)
    return np.interp(frac, x, y)


def _demand(dates: pd.DatetimeIndex, p: TechStyleParams, events: list[dict[str, Any]]) -> np.ndarray:
    """Daily demand index: month seasonality × weekday × dated events (promotions and holidays stack)."""
    month = _smooth_months(dates, p.month_index)
    weekday = np.asarray(p.weekday_index, dtype=float)[dates.day_of_week]
    d = month * weekday
    pos = {ts: i for i, ts in enumerate(dates)}
    for e in events:
        if e["factor_type"] != "platform_change":
            d[pos[e["date"]]] *= e["impact_multiplier"]
    return d


# --- spend ----------------------------------------------------------------------------------------------------
def _spend_path(c: ChannelParams, dates: pd.DatetimeIndex, demand: np.ndarray, rng: np.random.Generator,
                ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """A realistic, identifiable daily spend series: trend, budget steps, bursts, pauses, weekday pacing, noise."""
    n = len(dates)
    t = np.arange(n) / max(n - 1, 1)
    level = c.spend_start * (c.spend_end / c.spend_start) ** t
    steps = np.ones(n)
    i = 0
    while i < n:
        length = int(rng.integers(c.step_days[0], c.step_days[1] + 1))
        steps[i:i + length] = math.exp(rng.normal(0.0, c.volatility)) if c.volatility > 0 else 1.0
        i += length
    steps[-35:] = 1.0  # the current budget: the level the brand runs at now (keeps "current spend" on target)
    bursts = np.ones(n)
    flights: list[tuple[int, int, str]] = []
    n_pulses = rng.poisson(c.pulses_per_year * n / 365.0) if c.pulses_per_year > 0 else 0
    for _ in range(n_pulses):
        s = int(rng.integers(0, max(n - 35, 1)))
        length = int(rng.integers(5, 16))
        length = min(length, max(n - 35 - s, 1))
        bursts[s:s + length] *= rng.uniform(1.3, 1.8)
        flights.append((s, min(s + length, n) - 1, "awareness" if rng.random() < 0.4 else "conversion"))
    pauses = np.ones(n)
    for s in np.flatnonzero(rng.random(n - 35) < c.pause_prob):
        pauses[s:s + int(rng.integers(1, 4))] = rng.uniform(0.0, 0.15)
    weekday = np.asarray(c.weekday_spend, dtype=float)[dates.day_of_week]
    noise = np.exp(rng.normal(0.0, c.daily_noise, n))
    season = demand ** c.spend_seasonality
    spend = level * steps * bursts * pauses * weekday * noise * season
    spend *= c.spend_end / spend[-28:].mean()  # calibrate: the last four weeks average spend_end
    return np.round(spend, 2), flights


def _efficiency(c: ChannelParams, n: int, privacy_day: int) -> np.ndarray:
    eff = np.linspace(c.efficiency_start, c.efficiency_end, n)
    if c.privacy_loss > 0 and 0 <= privacy_day < n:
        eff[privacy_day:] *= 1.0 - c.privacy_loss
    return eff


def _adstock(x: np.ndarray, decay: float) -> np.ndarray:
    """Normalised geometric adstock started in steady state (the world existed before the data starts)."""
    burn = 60
    padded = np.concatenate([np.full(burn, x[:7].mean()), x])
    return geometric_adstock(padded, decay)[burn:]


# --- truth helpers --------------------------------------------------------------------------------------------
def _curve_value(ch: dict[str, Any], spend: np.ndarray | float) -> np.ndarray:
    s = ch["saturation"]
    return ch["beta"] * ch["efficiency_end"] * hill(spend, s["half"], s["shape"])


def _curve_marginal(ch: dict[str, Any], spend: np.ndarray | float) -> np.ndarray:
    s = ch["saturation"]
    return ch["beta"] * ch["efficiency_end"] * hill_derivative(spend, s["half"], s["shape"])


def _optimal_spend(ch: dict[str, Any], target: float = 1.0) -> float:
    """Daily spend where the steady-state marginal ROAS falls to ``target`` (0 if it never reaches it)."""
    half = ch["saturation"]["half"]
    grid = np.linspace(0.0, 50 * half, 20001)[1:]
    m = _curve_marginal(ch, grid)
    peak = int(np.argmax(m))
    if m[peak] < target:
        return 0.0
    above = np.flatnonzero(m[peak:] < target)
    if not len(above):
        return float(grid[-1])
    j = peak + int(above[0])
    return float(brentq(lambda x: float(_curve_marginal(ch, x)) - target, grid[j - 1], grid[j]))


def true_revenue(truth: dict[str, Any], allocation: dict[str, float]) -> float:
    """True steady-state daily incremental revenue of a daily spend mix (channels not named spend 0)."""
    unknown = set(allocation) - set(truth["channels"])
    if unknown:
        raise ValueError(f"unknown channel(s) {sorted(unknown)}; the world has {sorted(truth['channels'])}")
    total = 0.0
    for name, ch in truth["channels"].items():
        x = float(allocation.get(name, 0.0))
        if x < 0:
            raise ValueError(f"spend for {name!r} must be ≥ 0 (got {x})")
        curve = ch["response_curve"]
        if "beta" in ch and x > curve["spend"][-1]:
            total += float(_curve_value(ch, x))
        else:
            total += float(np.interp(x, curve["spend"], curve["revenue"]))
    return total


# --- generator ------------------------------------------------------------------------------------------------
def generate_techstyle(params: TechStyleParams | None = None, seed: int = 42, end: date | None = None,
                       ) -> TechStyleData:
    """Generate the TechStyle world (deterministic for ``seed``, ``params`` and ``end``)."""
    p = params or TechStyleParams()
    if not p.channels:
        raise ValueError("TechStyleParams needs at least one channel")
    if p.days < 60:
        raise ValueError(f"need at least 60 days of data (got {p.days})")
    names = [c.name for c in p.channels]
    if len(set(names)) != len(names):
        raise ValueError(f"channel names must be unique (got {names})")
    end = end or (date.today() - timedelta(days=1))
    dates = pd.date_range(end=pd.Timestamp(end), periods=p.days, freq="D")
    n = len(dates)
    ss = np.random.SeedSequence(seed)
    rng_events, rng_noise, rng_report, *rng_ch = [np.random.default_rng(s) for s in ss.spawn(3 + len(p.channels))]

    events = _events(dates, p, rng_events)
    demand = _demand(dates, p, events)
    years = np.arange(n) / 365.0
    brand = (1.0 + p.baseline_growth) ** years * np.exp(np.cumsum(rng_noise.normal(0, 0.004, n)) * 0.5)
    baseline = p.baseline * brand * demand
    media_mult = demand ** p.media_demand_elasticity

    rows, channel_truth, campaigns = [], {}, []
    incr_sum = np.zeros(n)
    for c, rng in zip(p.channels, rng_ch, strict=True):
        eff = _efficiency(c, n, p.privacy_change_day)
        flights: list[tuple[int, int, str]] = []
        if c.kind == "email":
            months = dates.to_period("M")
            list_size = (1.0 + c.list_growth) ** (np.arange(n) / 30.4)
            # campaign sizes vary, some sends are skipped, promotional blasts land on random days
            pattern = np.asarray(c.weekday_spend)[dates.day_of_week] * np.exp(rng.normal(0, c.daily_noise, n))
            pattern[rng.random(n) < 0.08] *= 0.2
            blasts = rng.random(n) < c.blasts_per_month / 30.4
            pattern[blasts] += rng.uniform(0.8, 1.6, int(blasts.sum()))
            sends = list_size * pattern
            # a fixed monthly fee (prorated for the partial months at either end), allocated to days by sends
            by_month = pd.Series(sends).groupby(np.asarray(months))
            month_sends = by_month.transform("sum").to_numpy()
            share_of_month = by_month.transform("size").to_numpy() / dates.days_in_month.to_numpy()
            spend = np.round(c.spend_end * 30.4 * share_of_month * sends / month_sends, 2)
            # response in spend-equivalent units at the end date's cost per send
            driver = sends * (spend[-28:].sum() / sends[-28:].sum())
        elif c.kind == "affiliate":
            # partners' activity follows demand and brand strength; the commission is the spend
            spend, flights = _spend_path(c, dates, demand, rng)
            spend = spend * brand
            spend = np.round(spend * c.spend_end / spend[-28:].mean(), 2)
            driver = spend
        else:
            spend, flights = _spend_path(c, dates, demand, rng)
            driver = spend
        mult = np.ones(n) if c.kind == "affiliate" else media_mult
        incr = c.beta * eff * mult * hill(_adstock(driver, c.decay), c.half, c.shape)
        incr_sum += incr

        # platform reporting: linear in spend (no saturation), follows demand and the platform's own tracking
        tracking = eff / max(eff.max(), 1e-9) if c.privacy_loss > 0 else np.ones(n)
        if c.kind == "affiliate":
            p_rev = spend / c.commission
        else:
            p_rev = c.platform_roas * spend * demand ** 0.6 * tracking * np.exp(rng_report.normal(0, 0.08, n))
        impressions = np.round(spend / c.cpm * 1000 * np.exp(rng_report.normal(0, 0.05, n)))
        clicks = np.round(impressions * c.ctr * np.exp(rng_report.normal(0, 0.06, n)))
        conversions = np.round(p_rev / c.aov)
        new = np.round(conversions * np.clip(rng_report.normal(c.new_share, 0.04, n), 0, 1))
        rows.append(pd.DataFrame({
            "date": dates, "channel": c.name, "spend": spend, "impressions": impressions.astype(int),
            "clicks": np.minimum(clicks, impressions).astype(int), "conversions": conversions.astype(int),
            "revenue": np.round(conversions * c.aov * np.exp(rng_report.normal(0, 0.03, n)), 2),
            "new_customers": new.astype(int), "returning_customers": (conversions - new).astype(int),
        }))
        campaigns.extend(_campaigns(c, dates, spend, flights))
        channel_truth[c.name] = {"spend": spend, "incr": incr, "eff_end": float(eff[-1]), "params": c}

    expected = baseline + incr_sum
    revenue = np.round(expected * (1.0 + rng_noise.normal(0.0, p.noise_sd, n)), 2)
    noise = revenue - expected
    orders = np.round(revenue / p.kpi_aov * np.exp(rng_noise.normal(0, 0.03, n))).astype(int)
    new_c = np.round(orders * np.clip(rng_noise.normal(p.kpi_new_share, 0.03, n), 0, 1)).astype(int)
    kpis = pd.DataFrame({"date": dates, "revenue": revenue, "orders": orders, "new_customers": new_c})
    marketing = pd.concat(rows, ignore_index=True).sort_values(["date", "channel"], ignore_index=True)
    camp = pd.DataFrame(campaigns)
    camp.insert(0, "campaign_id", [f"TS-{i + 1:04d}" for i in range(len(camp))])
    ext = pd.DataFrame(events, columns=["date", "factor_type", "factor_name", "impact_multiplier", "description"])

    truth = _truth(p, seed, dates, baseline, noise, revenue, channel_truth)
    return TechStyleData(marketing=marketing, kpis=kpis, campaigns=camp, external_factors=ext, truth=truth)


def _campaigns(c: ChannelParams, dates: pd.DatetimeIndex, spend: np.ndarray,
               flights: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """Campaign metadata: an always-on campaign per quarter plus one per burst, budgets from the spend path."""
    audience = {"Google Ads": "in-market shoppers", "Meta Ads": "lookalike 1-3%", "Email": "subscribers",
                "TikTok": "18-34 fashion interest", "Affiliate": "partner audiences"}.get(c.name, "prospects")
    creative = {"paid": "responsive display", "email": "newsletter", "affiliate": "partner content"}[c.kind]
    short = c.name.split()[0]
    out = []
    quarters = dates.to_period("Q")
    for q in quarters.unique():
        idx = np.flatnonzero(quarters == q)
        ctype = "retention" if c.kind == "email" else "conversion"
        out.append({"channel": c.name, "campaign_name": f"{short} always-on {q}", "campaign_type": ctype,
                    "start_date": dates[idx[0]].date(), "end_date": dates[idx[-1]].date(),
                    "daily_budget": round(float(spend[idx].mean()), 2), "target_audience": audience,
                    "creative_type": creative})
    for s, e, ctype in flights:
        out.append({"channel": c.name, "campaign_name": f"{short} {ctype} burst {dates[s].date().isoformat()}",
                    "campaign_type": ctype, "start_date": dates[s].date(), "end_date": dates[e].date(),
                    "daily_budget": round(float(spend[s:e + 1].mean()), 2),
                    "target_audience": audience, "creative_type": "video" if ctype == "awareness" else creative})
    out.sort(key=lambda r: (r["start_date"], r["campaign_name"]))
    return out


def _truth(p: TechStyleParams, seed: int, dates: pd.DatetimeIndex, baseline: np.ndarray, noise: np.ndarray,
           revenue: np.ndarray, channel_truth: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params = asdict(p)
    params["privacy_change_date"] = (dates[p.privacy_change_day].date().isoformat()
                                     if 0 <= p.privacy_change_day < len(dates) else None)
    channels: dict[str, Any] = {}
    for name, ct in channel_truth.items():
        c: ChannelParams = ct["params"]
        spend, incr = ct["spend"], ct["incr"]
        entry: dict[str, Any] = {
            "spend_total": float(spend.sum()), "incremental_revenue_total": float(incr.sum()),
            "incremental_revenue_daily": [float(v) for v in incr],
            "roas": float(incr.sum() / spend.sum()) if spend.sum() > 0 else 0.0,
            "adstock": {"type": "geometric", "decay": c.decay},
            "saturation": {"type": "hill", "half": c.half, "shape": c.shape},
            "beta": c.beta, "efficiency_end": ct["eff_end"],
            "current_daily_spend": float(spend[-28:].mean()),
            "fixed_cost": c.kind == "email", "kind": c.kind,
        }
        entry["optimal_daily_spend"] = _optimal_spend(entry)
        top = max(3.0 * entry["current_daily_spend"], 2.0 * entry["optimal_daily_spend"], 2.0 * c.half)
        grid = np.linspace(0.0, top, 121)
        entry["response_curve"] = {"spend": [float(x) for x in grid],
                                   "revenue": [float(v) for v in _curve_value(entry, grid)]}
        entry["marginal_roas_at_current"] = float(_curve_marginal(entry, entry["current_daily_spend"]))
        channels[name] = entry
    return {
        "generator": "techstyle", "seed": seed, "granularity": "day",
        "start": dates[0].date().isoformat(), "end": dates[-1].date().isoformat(), "params": params,
        "dates": [d.date().isoformat() for d in dates],
        "baseline": {"total": float(baseline.sum()), "daily": [float(v) for v in baseline]},
        "noise": {"daily": [float(v) for v in noise]},
        "kpi_total": float(revenue.sum()),
        "channels": channels,
    }


def aggregate_weekly(data: TechStyleData) -> TechStyleData:
    """The same world by week (Monday starts; partial weeks at either end dropped), truth aggregated too."""
    dates = pd.to_datetime(pd.Series(data.truth["dates"]))
    week = dates.dt.to_period("W-SUN").dt.start_time
    counts = week.value_counts()
    full = week.isin(counts[counts == 7].index).to_numpy()
    if not full.any():
        raise ValueError("the data has no complete week to aggregate")
    keep_weeks = sorted(week[full].unique())

    def by_week(values: list[float]) -> list[float]:
        s = pd.Series(np.asarray(values, dtype=float)[full]).groupby(week[full].to_numpy()).sum()
        return [float(v) for v in s.reindex(keep_weeks).to_numpy()]

    def weekly(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        d = df.copy()
        d["date"] = pd.to_datetime(d["date"]).dt.to_period("W-SUN").dt.start_time
        d = d[d["date"].isin(keep_weeks)]
        return d.groupby(["date", *keys], as_index=False).sum(numeric_only=True)

    t = json.loads(json.dumps(data.truth))
    t["granularity"] = "week"
    t["dates"] = [w.date().isoformat() for w in keep_weeks]
    t["start"], t["end"] = t["dates"][0], (keep_weeks[-1] + pd.Timedelta(days=6)).date().isoformat()
    t["baseline"] = {"total": float(np.sum(by_week(data.truth["baseline"]["daily"]))),
                     "daily": by_week(data.truth["baseline"]["daily"])}
    t["noise"] = {"daily": by_week(data.truth["noise"]["daily"])}
    mk = data.marketing.copy()
    mk["_keep"] = pd.to_datetime(mk["date"]).isin(dates[full])
    for name, ch in t["channels"].items():
        ch["incremental_revenue_daily"] = by_week(data.truth["channels"][name]["incremental_revenue_daily"])
        ch["incremental_revenue_total"] = float(np.sum(ch["incremental_revenue_daily"]))
        ch["spend_total"] = float(mk.loc[mk["_keep"] & (mk["channel"] == name), "spend"].sum())
        ch["roas"] = ch["incremental_revenue_total"] / ch["spend_total"] if ch["spend_total"] > 0 else 0.0
    kpis = weekly(data.kpis, [])
    t["kpi_total"] = float(kpis["revenue"].sum())
    ext = data.external_factors.copy()
    return TechStyleData(marketing=weekly(data.marketing, ["channel"]), kpis=kpis, campaigns=data.campaigns.copy(),
                         external_factors=ext, truth=t)


def write_techstyle(out_dir: str | Path, seed: int = 42, journeys: int = 20000, params: TechStyleParams | None = None,
                    end: date | None = None) -> dict[str, Path]:
    """Write the demo CSVs and truth.json into ``out_dir`` (created); return the written paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = generate_techstyle(params, seed=seed, end=end)
    files = {
        "daily_marketing_data": (data.marketing, out / "daily_marketing_data.csv"),
        "daily_kpis": (data.kpis, out / "daily_kpis.csv"),
        "campaigns": (data.campaigns, out / "campaigns.csv"),
        "external_factors": (data.external_factors, out / "external_factors.csv"),
    }
    written: dict[str, Path] = {}
    for name, (df, path) in files.items():
        d = df.copy()
        for col in ("date", "start_date", "end_date"):
            if col in d.columns:
                d[col] = pd.to_datetime(d[col]).dt.strftime("%Y-%m-%d")
        d.to_csv(path, index=False)
        written[name] = path
    if journeys and journeys > 0:
        from core.demo.journeys import generate_journeys  # written alongside; optional until then

        # intent-driven exposure and a non-causal Direct, as real journeys have them: the demo shows why the
        # journey credit needs the MMM beside it
        jdf, jtruth = generate_journeys(data.marketing, n_journeys=journeys, seed=seed, intent=DEMO_JOURNEY_INTENT)
        jdf.to_csv(out / "journeys.csv", index=False)
        data.truth["attribution"] = jtruth
        written["journeys"] = out / "journeys.csv"
    (out / "truth.json").write_text(json.dumps(data.truth, default=json_default))
    written["truth"] = out / "truth.json"
    return written


