"""Calendar pieces of a benchmark world: dates, trend, yearly season, weekday pattern, holidays and promotions.

Everything here is built on a daily grid (for weekly worlds: every day of every week) in log-multiplier units; the
caller sums days into periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import holidays
import numpy as np
import pandas as pd

COUNTRIES = ["US", "GB", "DE", "FR", "CA", "AU"]
COUNTRY_P = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
FIRST_END = pd.Timestamp("2020-03-01")
LAST_END = pd.Timestamp("2025-12-31")


@dataclass
class Calendar:
    """Period dates, the daily grid beneath them and the index of each day's period."""

    granularity: str
    dates: pd.DatetimeIndex
    days: pd.DatetimeIndex
    period_of_day: np.ndarray
    years: float

    @property
    def n(self) -> int:
        return len(self.dates)

    def to_periods(self, daily: np.ndarray) -> np.ndarray:
        """Sum a daily series into periods."""
        return np.bincount(self.period_of_day, weights=daily, minlength=self.n)


def draw_calendar(rng: np.random.Generator, granularity: str) -> Calendar:
    """History of 1.5-4 years (weekly at least 2) ending somewhere between 2020-03 and 2025-12."""
    end = FIRST_END + pd.Timedelta(days=int(rng.integers(0, (LAST_END - FIRST_END).days + 1)))
    if granularity == "day":
        years = float(rng.uniform(1.5, 4.0))
        n = int(round(years * 365.25))
        dates = pd.date_range(end=end, periods=n, freq="D")
        days, pod = dates, np.arange(n)
    else:
        years = float(rng.uniform(2.0, 4.0))
        n = max(104, int(round(years * 365.25 / 7)))
        monday = end - pd.Timedelta(days=end.weekday())
        dates = pd.date_range(end=monday, periods=n, freq="7D")
        days = pd.date_range(dates[0], periods=7 * n, freq="D")
        pod = np.repeat(np.arange(n), 7)
    return Calendar(granularity, dates, days, pod, years)


def _years(days: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray((days - days[0]).days, float) / 365.25


def draw_trend(rng: np.random.Generator, cal: Calendar) -> tuple[np.ndarray, dict]:
    """Log trend on the daily grid (mean 0): flat, linear, or linear with a slope change."""
    t = _years(cal.days)
    kind = str(rng.choice(["flat", "linear", "slope_change"], p=[0.15, 0.5, 0.35]))
    g = 0.0 if kind == "flat" else float(rng.uniform(-0.1, 0.25))
    info: dict = {"kind": kind, "growth_per_year": g}
    log_t = g * t
    if kind == "slope_change":
        t0 = float(rng.uniform(0.3, 0.8)) * t[-1]
        g2 = g + float(rng.choice([-1, 1])) * float(rng.uniform(0.1, 0.3))
        log_t = log_t + (g2 - g) * np.maximum(0.0, t - t0)
        info.update(growth_after=g2, change_at=str(cal.days[int(np.searchsorted(t, t0))].date()))
    return log_t - log_t.mean(), info


def draw_season(rng: np.random.Generator, cal: Calendar) -> tuple[np.ndarray, dict]:
    """Log yearly season on the daily grid: a peak (Q4, summer, spring) of random sharpness, Fourier terms, or ~flat."""
    kind = str(rng.choice(["q4_peak", "summer", "spring", "fourier", "flat"], p=[0.3, 0.2, 0.1, 0.25, 0.15]))
    phase = 2 * np.pi * np.asarray(cal.days.day_of_year, float) / 365.25
    amp = float(rng.uniform(0.15, 0.9)) if kind != "flat" else float(rng.uniform(0.0, 0.08))
    info: dict = {"kind": kind, "amplitude": amp}
    if kind in ("q4_peak", "summer", "spring"):
        lo, hi = {"q4_peak": (305, 355), "summer": (170, 225), "spring": (80, 130)}[kind]
        peak = float(rng.uniform(lo, hi))
        kappa = float(np.exp(rng.uniform(np.log(0.5), np.log(8.0))))
        v = (np.exp(kappa * np.cos(phase - 2 * np.pi * peak / 365.25)) - np.exp(-kappa)) / (2 * np.sinh(kappa))
        info.update(peak_day_of_year=peak, sharpness=kappa)
    else:
        k = 1 if kind == "flat" else int(rng.integers(1, 4))
        v = np.zeros(len(phase))
        for j in range(1, k + 1):
            v += rng.normal() / j * np.sin(j * phase) + rng.normal() / j * np.cos(j * phase)
        v = (v - v.min()) / max(v.max() - v.min(), 1e-9)
        info["harmonics"] = k
    log_s = amp * v
    return log_s - log_s.mean(), info


def draw_weekday(rng: np.random.Generator, cal: Calendar) -> tuple[np.ndarray, dict | None]:
    """Log weekday pattern for daily worlds (weekend dip, weekend peak or arbitrary); zeros for weekly worlds."""
    if cal.granularity == "week":
        return np.zeros(len(cal.days)), None
    kind = str(rng.choice(["weekend_dip", "weekend_peak", "random"]))
    amp = float(rng.uniform(0.03, 0.25))
    if kind == "random":
        w = rng.normal(0, 1, 7)
    else:
        w = np.array([0, 0, 0, 0, 0.3, 1, 1]) * (1 if kind == "weekend_peak" else -1) + rng.normal(0, 0.15, 7)
    w = amp * (w - w.mean()) / max(np.abs(w - w.mean()).max(), 1e-9)
    return w[np.asarray(cal.days.day_of_week)], {"kind": kind, "log_effects": [float(x) for x in w]}


@dataclass
class Events:
    """Holidays, shopping events and promotions: their daily log effect, flags and table rows."""

    log_effect: np.ndarray
    holiday_flag: np.ndarray
    promo_flag: np.ndarray
    rows: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _holiday_effect(rng: np.random.Generator) -> float:
    u = rng.uniform()
    if u < 0.6:
        return float(rng.uniform(0.05, 0.6))
    if u < 0.85:
        return float(rng.uniform(-0.35, -0.05))
    return float(rng.uniform(-0.03, 0.03))


def _window(rng: np.random.Generator, effect: float, allow: bool) -> dict[int, float]:
    """Effect per day offset around the actual date (a pre-ramp or a short tail for some)."""
    w = {0: effect}
    if allow and rng.uniform() < 0.3:
        if rng.uniform() < 0.6:
            k, peak = int(rng.integers(1, 8)), float(rng.uniform(0.3, 0.7))
            w.update({-i: effect * peak * (k + 1 - i) / k for i in range(1, k + 1)})
        else:
            k = int(rng.integers(1, 4))
            w.update({i: effect * 0.5 ** i for i in range(1, k + 1)})
    return w


def draw_events(rng: np.random.Generator, cal: Calendar, country: str) -> Events:
    """Public holidays of `country` (own effect per holiday, windows for some), Black Friday/Cyber Monday, promos."""
    days = cal.days
    n_days = len(days)
    day_idx = {d.date(): i for i, d in enumerate(days)}
    log_eff = np.zeros(n_days)
    hol_flag = np.zeros(n_days)
    promo_flag = np.zeros(n_days)
    rows: list[dict] = []
    years = list(range(days[0].year, days[-1].year + 1))
    try:
        cal_h = holidays.country_holidays(country, years=years, language="en_US")
    except (NotImplementedError, ValueError, KeyError):
        cal_h = holidays.country_holidays(country, years=years)
    effects: dict[str, dict[int, float]] = {}
    n_windows = 0

    def put(i0: int, w: dict[int, float], name: str, ftype: str, flag: np.ndarray) -> None:
        for off, e in w.items():
            if 0 <= i0 + off < n_days:
                log_eff[i0 + off] += np.log1p(e)
        if 0 <= i0 < n_days:
            flag[i0] = 1.0
            rows.append({"day": i0, "factor_type": ftype, "factor_name": name, "mult": 1.0 + w[0]})

    for d, name in sorted(cal_h.items()):
        if d not in day_idx:
            continue
        if name not in effects:
            effects[name] = _window(rng, _holiday_effect(rng), allow=True)
            n_windows += len(effects[name]) > 1
        put(day_idx[d], effects[name], name, "holiday", hol_flag)
    bfcm = bool(rng.uniform() < (0.6 if country == "US" else 0.3))
    if bfcm:
        bf, cm = float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.3, 1.0))
        pre = int(rng.integers(2, 8))
        w_bf = {0: bf, 1: bf * 0.4, 2: bf * 0.3} | {-i: bf * 0.3 * (pre + 1 - i) / pre for i in range(1, pre + 1)}
        for y in years:
            nov1 = pd.Timestamp(year=y, month=11, day=1)
            thanksgiving = nov1 + pd.Timedelta(days=(3 - nov1.weekday()) % 7 + 21)
            for off, name, w in ((1, "Black Friday", w_bf), (4, "Cyber Monday", {0: cm})):
                dd = (thanksgiving + pd.Timedelta(days=off)).date()
                if dd in day_idx:
                    put(day_idx[dd], w, name, "event", hol_flag)
    n_promos = 0
    if rng.uniform() < 0.35:
        per_year = int(rng.integers(3, 9))
        k = max(1, int(round(per_year * n_days / 365.25)))
        for j in range(k):
            start, dur, lift = int(rng.integers(0, n_days)), int(rng.integers(2, 11)), float(rng.uniform(0.08, 0.4))
            for i in range(start, min(start + dur, n_days)):
                log_eff[i] += np.log1p(lift)
                promo_flag[i] = 1.0
                rows.append({"day": i, "factor_type": "promotion", "factor_name": f"promo_{j + 1:02d}",
                             "mult": 1 + lift})
            n_promos += 1
    info = {"n_holiday_names": len(effects), "n_with_window": int(n_windows), "bfcm": bfcm, "n_promotions": n_promos,
            "holiday_effects": {k: float(v[0]) for k, v in effects.items()}}
    return Events(log_eff, hol_flag, promo_flag, rows, info)


def events_table(ev: Events, cal: Calendar, mode: str, rng: np.random.Generator) -> pd.DataFrame:
    """The external-factors table: one row per event day (daily) or per event and week (weekly, date = Monday).

    `mode` sets impact_multiplier: 'given' (the true multiplier on the day, or the week-average lift for weekly
    data), 'nan' (unknown) or 'mixed' (about half unknown).
    """
    out = []
    for r in ev.rows:
        day = cal.days[r["day"]]
        mult = r["mult"]
        date = day
        if cal.granularity == "week":
            date = cal.dates[cal.period_of_day[r["day"]]]
            mult = 1.0 + (mult - 1.0) / 7.0
        out.append({"date": date, "factor_type": r["factor_type"], "factor_name": r["factor_name"],
                    "impact_multiplier": round(float(mult), 2),
                    "description": f"{r['factor_name']} ({r['factor_type']}) on {day.date()}"})
    df = pd.DataFrame(out, columns=["date", "factor_type", "factor_name", "impact_multiplier", "description"])
    if cal.granularity == "week" and len(df):
        agg = df.groupby(["date", "factor_type", "factor_name"], sort=True, as_index=False).agg(
            impact_multiplier=("impact_multiplier", lambda s: round(1.0 + float((s - 1.0).sum()), 2)),
            description=("description", "first"))
        df = agg[["date", "factor_type", "factor_name", "impact_multiplier", "description"]]
    df = df.sort_values(["date", "factor_name"], kind="stable").reset_index(drop=True)
    if mode == "nan":
        df["impact_multiplier"] = np.nan
    elif mode == "mixed":
        df.loc[rng.uniform(size=len(df)) < 0.5, "impact_multiplier"] = np.nan
    df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    df["impact_multiplier"] = df["impact_multiplier"].astype(float)
    return df
