"""Input preparation for the MMM: long → wide pivot, validation with clear refusals, and the baseline design.

The baseline is everything that moves the KPI without media: intercept, linear trend plus quarterly trend changes
(slow drifts such as brand strength), yearly Fourier seasonality and its growth with the trend, weekday effects
(daily data), one regressor per external factor name (holidays, promotions) and optional control columns. Weekday and
event columns are scaled by the KPI's seasonal level (their effects are proportional to the season). Columns other
than intercept and trend get a light ridge penalty so that many dummies or controls cannot soak up media effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Prepared", "to_wide", "prepare", "baseline_design"]

MIN_ROWS_PER_CHANNEL = 8
KNOT_DAYS = {1.0: 91, 7.0: 182}  # spacing of trend changes (daily, weekly data)
KNOT_PENALTY = 1.0
K_YEAR = {1.0: 12, 7.0: 4}  # yearly Fourier order with 1.5+ years (daily, weekly): sharp seasons need many


@dataclass
class Prepared:
    """Validated model inputs."""

    dates: pd.DatetimeIndex
    y: np.ndarray  # KPI per period
    spend: np.ndarray  # (n, C) spend per period
    channels: list[str]
    controls: np.ndarray  # (n, k) raw control values
    control_names: list[str]
    granularity: str  # "day" | "week"
    days: float  # days per period (1 or 7)
    warnings: list[str]


def to_wide(marketing: pd.DataFrame, kpis: pd.DataFrame, controls: pd.DataFrame | None = None,
            kpi_col: str = "revenue") -> pd.DataFrame:
    """Pivot the canonical long ``marketing`` table to one spend column per channel, joined to the KPI by date.

    Platform-reported revenue per channel (if present) is kept in ``df.attrs["platform_revenue"]`` (totals) so the
    model can compare it with its own incremental estimate.
    """
    for name, t, cols in (("marketing", marketing, ("date", "channel", "spend")), ("kpis", kpis, ("date", kpi_col))):
        missing = [c for c in cols if c not in t.columns]
        if missing:
            raise ValueError(f"{name} table is missing column(s): {', '.join(missing)}")
    m = marketing.copy()
    m["date"] = pd.to_datetime(m["date"])
    wide = m.pivot_table(index="date", columns="channel", values="spend", aggfunc="sum", fill_value=0.0)
    wide.columns = [str(c) for c in wide.columns]
    k = kpis[["date", kpi_col]].copy()
    k["date"] = pd.to_datetime(k["date"])
    k = k.groupby("date", as_index=False)[kpi_col].sum()
    df = k.merge(wide.reset_index(), on="date", how="left").fillna({c: 0.0 for c in wide.columns})
    if controls is not None and len(controls):
        c = controls.copy()
        c["date"] = pd.to_datetime(c["date"])
        df = df.merge(c, on="date", how="left")
    df = df.sort_values("date").reset_index(drop=True)
    if "revenue" in m.columns:
        df.attrs["platform_revenue"] = {str(k): float(v) for k, v in m.groupby("channel")["revenue"].sum().items()}
    return df


def _granularity(dates: pd.DatetimeIndex) -> tuple[str, float]:
    diffs = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    med = int(np.median(diffs))
    if med == 1:
        gran, days = "day", 1.0
    elif med == 7:
        gran, days = "week", 7.0
    else:
        raise ValueError(f"dates must be daily or weekly; the typical gap between rows is {med} days")
    bad = np.nonzero(diffs != med)[0]
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"dates are not regular {gran}s: gap of {diffs[i]} days between {dates[i].date()} and "
                         f"{dates[i + 1].date()} (rows {i + 1}–{i + 2}); {len(bad)} irregular gap(s) in total — fill "
                         "missing periods (zero spend) or aggregate")
    return gran, days


def prepare(df: pd.DataFrame, date_col: str, kpi_col: str, spend_cols: list[str],
            control_cols: list[str] | None, n_baseline: int) -> Prepared:
    """Validate wide input and refuse, with the reason, data the model cannot fit."""
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError("no data: the table is empty")
    if not spend_cols:
        raise ValueError("no spend columns given: name at least one channel's spend column")
    if len(set(spend_cols)) != len(spend_cols):
        raise ValueError("spend columns are listed more than once")
    control_cols = list(control_cols or [])
    needed = [date_col, kpi_col, *spend_cols, *control_cols]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"column(s) not found: {', '.join(missing)}; available: {', '.join(map(str, df.columns))}")
    overlap = set(control_cols) & set(spend_cols) | ({kpi_col} & set(spend_cols + control_cols))
    if overlap:
        raise ValueError(f"column(s) used twice (KPI/spend/control): {', '.join(sorted(overlap))}")
    d = df[needed].copy()
    dates = pd.to_datetime(d[date_col], errors="coerce")
    if dates.isna().any():
        i = int(np.nonzero(dates.isna().to_numpy())[0][0])
        raise ValueError(f"column {date_col!r}: row {i + 1} is not a date ({df[date_col].iloc[i]!r})")
    d[date_col] = dates
    if dates.duplicated().any():
        dup = dates[dates.duplicated()].iloc[0]
        raise ValueError(f"column {date_col!r}: date {dup.date()} appears more than once; one row per period")
    d = d.sort_values(date_col).reset_index(drop=True)
    if len(d) < 3:
        raise ValueError(f"too few rows ({len(d)}) to fit a model")
    gran, days = _granularity(pd.DatetimeIndex(d[date_col]))
    for c in [kpi_col, *spend_cols, *control_cols]:
        v = pd.to_numeric(d[c], errors="coerce")
        bad = v.isna() & d[c].notna()
        if bad.any():
            i = int(np.nonzero(bad.to_numpy())[0][0])
            raise ValueError(f"column {c!r}: row {i + 1} ({d[date_col].iloc[i].date()}) is not a number "
                             f"({d[c].iloc[i]!r})")
        if v.isna().any():
            i = int(np.nonzero(v.isna().to_numpy())[0][0])
            raise ValueError(f"column {c!r}: missing value (NaN) in row {i + 1} ({d[date_col].iloc[i].date()}); "
                             f"{int(v.isna().sum())} missing in total — fill or drop them first")
        if not np.isfinite(v.to_numpy()).all():
            raise ValueError(f"column {c!r} contains infinite values")
        d[c] = v.astype(float)
    y = d[kpi_col].to_numpy(float)
    if np.ptp(y) <= 1e-12 * max(1.0, abs(y).max()):
        raise ValueError(f"KPI column {kpi_col!r} is constant ({y[0]:g}): nothing to explain")
    spend = d[spend_cols].to_numpy(float)
    for j, c in enumerate(spend_cols):
        if (spend[:, j] < 0).any():
            i = int(np.nonzero(spend[:, j] < 0)[0][0])
            raise ValueError(f"spend column {c!r}: negative spend {spend[i, j]:g} in row {i + 1} "
                             f"({d[date_col].iloc[i].date()})")
        if spend[:, j].sum() <= 0:
            raise ValueError(f"spend column {c!r} is zero throughout: its effect cannot be estimated; drop it")
    n_params = n_baseline + len(control_cols) + 4 * len(spend_cols)
    need = max(n_params + 10, MIN_ROWS_PER_CHANNEL * len(spend_cols) + n_baseline)
    if len(d) < need:
        raise ValueError(f"too few rows for the model: {len(d)} {gran}s for {len(spend_cols)} channel(s) "
                         f"(and {n_baseline + len(control_cols)} baseline terms); need at least {need} — use daily "
                         f"data, a longer history or fewer channels")
    warnings: list[str] = []
    for j, c in enumerate(spend_cols):
        nz = spend[:, j][spend[:, j] > 0]
        if len(nz) and np.std(spend[:, j]) < 0.02 * np.mean(spend[:, j]):
            warnings.append(f"{c}: spend is almost constant, so its effect is confounded with the baseline; "
                            "its interval is wide")
    for c in control_cols:
        if np.ptp(d[c].to_numpy()) == 0:
            raise ValueError(f"control column {c!r} is constant: it cannot explain anything; drop it")
    return Prepared(pd.DatetimeIndex(d[date_col]), y, spend, list(spend_cols), d[control_cols].to_numpy(float),
                    control_cols, gran, days, warnings)


def _factor_columns(dates: pd.DatetimeIndex, days: float, external_factors: pd.DataFrame | None
                    ) -> tuple[np.ndarray, list[str]]:
    """One regressor per external factor name: the factor's (multiplier − 1) on its dates (1 when no multiplier)."""
    if external_factors is None or len(external_factors) == 0:
        return np.zeros((len(dates), 0)), []
    ef = external_factors.copy()
    for c in ("date", "factor_name"):
        if c not in ef.columns:
            raise ValueError(f"external_factors is missing column {c!r}")
    ef["date"] = pd.to_datetime(ef["date"], errors="coerce")
    ef = ef.dropna(subset=["date"])
    mult = pd.to_numeric(ef.get("impact_multiplier", pd.Series(np.nan, index=ef.index)), errors="coerce")
    ef["value"] = np.where(mult.notna() & (mult != 1.0), mult - 1.0, 1.0)
    # map each factor date to the period containing it
    idx = np.searchsorted(dates.values, ef["date"].values, side="right") - 1
    end = dates[-1] + pd.Timedelta(days=days)
    keep = (idx >= 0) & (ef["date"].values < end.to_datetime64())
    ef, idx = ef[keep], idx[keep]
    names = sorted(ef["factor_name"].astype(str).unique())
    X = np.zeros((len(dates), len(names)))
    col = {n: i for i, n in enumerate(names)}
    for (name, v), i in zip(zip(ef["factor_name"].astype(str), ef["value"], strict=True), idx, strict=True):
        X[i, col[name]] += v / days if days > 1 else v
    keep_cols = [j for j in range(X.shape[1]) if np.count_nonzero(X[:, j]) and np.ptp(X[:, j]) > 0]
    return X[:, keep_cols], [f"factor:{names[j]}" for j in keep_cols]


def seasonal_level(y: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """Relative seasonal level (mean 1) of a positive KPI: exp of a log-linear fit on trend + yearly Fourier terms.

    Used to scale weekday and event effects, which in retail are proportional to the season's level (a Saturday in
    December adds more than a Saturday in July). Returns ones when the KPI is not positive.
    """
    if (y <= 0).any():
        return np.ones(len(y))
    coef, *_ = np.linalg.lstsq(smooth, np.log(y), rcond=None)
    lv = np.exp(smooth @ coef)
    return lv / lv.mean()


def baseline_design(dates: pd.DatetimeIndex, days: float, controls: np.ndarray, control_names: list[str],
                    external_factors: pd.DataFrame | None, t_scale: tuple[pd.Timestamp, float] | None = None,
                    y: np.ndarray | None = None, season_growth: bool = True
                    ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Baseline columns, their names and per-column ridge penalties (0 = unpenalised).

    ``t_scale`` = (origin date, span in days) fixes the trend scale so that a holdout's design continues the fit's.
    With ``y`` (the KPI), weekday and event columns are scaled by the KPI's seasonal level (multiplicative effects).
    ``season_growth`` adds seasonal swings that grow with the trend (an additive model's stand-in for a
    multiplicative season; a log KPI has it built in, and the extra columns only extrapolate badly there).
    """
    n = len(dates)
    origin, span = t_scale or (dates[0], max((dates[-1] - dates[0]).days, 1))
    tt = (dates - origin).days.to_numpy(float) / span
    cols, names, pen = [np.ones(n), tt], ["intercept", "trend"], [0.0, 0.0]
    years = span / 365.25
    k_year = 0 if years < 0.9 else (2 if years < 1.5 else K_YEAR.get(days, 4))
    doy = 2 * np.pi * (dates.day_of_year.to_numpy() - 1 + (days - 1) / 2) / 365.25
    for k in range(1, k_year + 1):
        cols += [np.sin(k * doy), np.cos(k * doy)]
        names += [f"yearly_sin{k}", f"yearly_cos{k}"]
        pen += [1.0, 1.0]
    if years >= 1.5 and season_growth:  # seasonal swings that grow with the business (multiplicative baselines)
        tc = tt - tt.mean()
        for k in range(1, 3):
            cols += [tc * np.sin(k * doy), tc * np.cos(k * doy)]
            names += [f"trend_x_yearly_sin{k}", f"trend_x_yearly_cos{k}"]
            pen += [1.0, 1.0]
    # slow drifts of the base business (brand strength): trend changes every ~quarter, shrunk by the ridge
    knot_days = KNOT_DAYS.get(days, 182)
    n_knots = int(span // knot_days)
    for j in range(1, n_knots):
        kt = j * knot_days / span
        cols.append(np.maximum(tt - kt, 0.0))
        names.append(f"trend_change{j}")
        pen.append(KNOT_PENALTY)
    level = seasonal_level(y, np.column_stack(cols[:2 + 2 * k_year])) if (y is not None and k_year) else 1.0
    if days == 1:
        wd = dates.day_of_week.to_numpy()
        for k in range(1, 7):
            cols.append((wd == k).astype(float) * level)
            names.append(f"weekday_{k}")
            pen.append(1.0)
    F, fnames = _factor_columns(dates, days, external_factors)
    for j in range(F.shape[1]):
        cols.append(F[:, j] * level)
        names.append(fnames[j])
        pen.append(1.0)
    for j, c in enumerate(control_names):
        v = controls[:, j]
        cols.append(v)
        names.append(f"control:{c}")
        pen.append(1.0)
    return np.column_stack(cols), names, np.array(pen)


def demand_index(dates: pd.DatetimeIndex, days: float, external_factors: pd.DataFrame | None,
                 y: np.ndarray) -> np.ndarray:
    """Seasonal demand index (geometric mean 1) of a positive KPI: the yearly, weekday and event part of a log-linear
    fit on the baseline design (trend and trend changes are left out: growth is not seasonal demand).

    Media effects often scale with it (ads convert better in high season). Returns ones when the KPI is not positive
    or the history is too short for a yearly season.
    """
    n = len(dates)
    if (y <= 0).any():
        return np.ones(n)
    X, names, pen = baseline_design(dates, days, np.zeros((n, 0)), [], external_factors)
    seasonal = np.array([nm.startswith(("yearly_", "weekday_", "factor:")) for nm in names])
    if not seasonal.any():
        return np.ones(n)
    ly = np.log(y)
    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    Xs = X / sd
    lam = pen * 1e-3 * n
    coef = np.linalg.solve(Xs.T @ Xs + np.diag(lam + 1e-9), Xs.T @ ly)
    s = Xs[:, seasonal] @ coef[seasonal]
    return np.exp(s - s.mean())
