"""Daily revenue forecast from a fitted MMM artifact and planned spend, with an honest backtest.

Revenue = baseline + paid media. The media part comes from the artifact alone: each channel's planned daily spend
is carried over with its adstock decay and put through its response curve, for every bootstrap draw. The baseline
(everything not driven by media: trend, yearly and weekly seasonality, holidays and other external factors) is a
regression fitted on the KPI minus the model's media contribution. Recurring holidays without future-dated rows
(Black Friday, Christmas) are projected to their next dates from their own history: same calendar day, same n-th
weekday of the month, or same weekday a year later.

The backtest refits the baseline on the data before the last ``weeks`` weeks, forecasts those weeks from the spend
actually made, and reports MAPE next to seasonal-naive forecasts (same weekday last year; last week repeated).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.mmm.adstock import carryover
from core.mmm.curves import is_fixed_cost, response_draws

__all__ = ["forecast_revenue", "backtest", "media_draws", "project_factors"]

YEARLY_TERMS = 6
N_SAMPLES = 600


# --------------------------------------------------------------------------------------------- media
def _decay(channel: Mapping[str, Any]) -> float:
    draws = (channel.get("params_draws") or {}).get("decay")
    if draws:
        return float(np.clip(np.mean(draws), 0.0, 0.99))
    return float(np.clip((channel.get("adstock") or {}).get("decay", 0.0), 0.0, 0.99))


def _adstock(x: np.ndarray, decay: float, start: float, stages: int = 1) -> np.ndarray:
    """The model's normalised carry-over (geometric or delayed peak) of ``x``, starting from the steady state of a
    constant spend ``start`` (the recent level) rather than from zero."""
    if not x.size:
        return np.asarray(x, float)
    warm = int(np.ceil(np.log(1e-6) / np.log(max(decay, 1e-3)))) * max(stages, 1) + 1 if decay > 0 else 1
    padded = np.r_[np.full(min(warm, 5000), start), np.asarray(x, float)]
    return carryover(padded, decay, stages)[-len(x):]


def media_draws(artifact: Mapping[str, Any], spend: pd.DataFrame,
                fixed: set[str] | None = None) -> dict[str, np.ndarray]:
    """Per channel, daily incremental KPI per draw (D, T) for a daily spend table (one column per channel).

    Fixed-cost channels contribute their response at the current spend every day. A channel missing from
    ``spend`` is taken at zero spend.
    """
    out = {}
    for name, ch in (artifact.get("channels") or {}).items():
        if is_fixed_cost(name, ch, fixed):
            cur = float(ch.get("current_daily_spend") or 0.0)
            r = response_draws(ch, np.array([cur]))
            out[name] = np.repeat(r, len(spend), axis=1)
            continue
        x = spend[name].to_numpy(dtype=float) if name in spend else np.zeros(len(spend))
        x = np.nan_to_num(x, nan=0.0)
        a = _adstock(x, _decay(ch), x[0] if x.size else 0.0, int((ch.get("adstock") or {}).get("stages", 1)))
        out[name] = response_draws(ch, a)
    return out


# --------------------------------------------------------------------------------------------- external factors
def _runs(dates: pd.Series) -> list[tuple[pd.Timestamp, int]]:
    """Consecutive-day runs as (start, length)."""
    d = sorted(pd.to_datetime(dates).dt.normalize().unique())
    runs: list[tuple[pd.Timestamp, int]] = []
    for x in d:
        x = pd.Timestamp(x)
        if runs and x - (runs[-1][0] + pd.Timedelta(days=runs[-1][1] - 1)) == pd.Timedelta(days=1):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((x, 1))
    return runs


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> pd.Timestamp | None:
    """The n-th (1-based; negative = from the end) weekday of a month."""
    days = pd.date_range(pd.Timestamp(year, month, 1), periods=pd.Timestamp(year, month, 1).days_in_month)
    hits = days[days.day_of_week == weekday]
    if nth > 0:
        return hits[nth - 1] if nth <= len(hits) else None
    return hits[nth] if -nth <= len(hits) else None


def _next_start(starts: list[pd.Timestamp], year: int) -> pd.Timestamp | None:
    """Where a recurring factor starts in ``year``, by the rule its past starts follow."""
    last = starts[-1]

    def fixed(y: int) -> pd.Timestamp | None:
        try:
            return pd.Timestamp(y, last.month, last.day)
        except ValueError:
            return None

    def nth(s: pd.Timestamp) -> int:
        return (s.day - 1) // 7 + 1

    def nth_end(s: pd.Timestamp) -> int:
        return -((s.days_in_month - s.day) // 7 + 1)

    if len(starts) >= 2:
        if all((s.month, s.day) == (last.month, last.day) for s in starts):
            return fixed(year)
        if all((s.month, s.weekday(), nth(s)) == (last.month, last.weekday(), nth(last)) for s in starts):
            return _nth_weekday(year, last.month, last.weekday(), nth(last))
        if all((s.month, s.weekday(), nth_end(s)) == (last.month, last.weekday(), nth_end(last)) for s in starts):
            return _nth_weekday(year, last.month, last.weekday(), nth_end(last))
        return last + pd.Timedelta(weeks=52 * (year - last.year))  # same weekday about a year on
    return fixed(year)


def _offset(a: list[pd.Timestamp], b: list[pd.Timestamp], window: int = 10) -> int | None:
    """The constant day offset of every start in ``a`` from its one partner in ``b`` (within ``window`` days)."""
    offsets = set()
    for s in a:
        near = [(s - t).days for t in b if abs((s - t).days) <= window]
        if len(near) != 1:
            return None
        offsets.add(near[0])
    return offsets.pop() if len(offsets) == 1 else None


def _groups(recurring: dict[str, list[pd.Timestamp]]) -> list[dict[str, int]]:
    """Factors that always fall a fixed number of days apart (Thanksgiving, Black Friday, Cyber Monday) as groups:
    name → offset from the group's first member."""
    names = sorted(recurring)
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if len(recurring[a]) == len(recurring[b]) and _offset(recurring[a], recurring[b]) is not None:
                parent[root(b)] = root(a)
    groups: dict[str, dict[str, int]] = {}
    for n in names:
        r = root(n)
        groups.setdefault(r, {})[n] = _offset(recurring[n], recurring[r]) if n != r else 0
    return list(groups.values())


def project_factors(external_factors: pd.DataFrame | None, start: pd.Timestamp,
                    end: pd.Timestamp) -> pd.DataFrame:
    """Factor rows (date, factor_name, impact_multiplier) covering [start, end]: future-dated rows as given, plus
    recurring factors projected to their next dates where the table has no row near them.

    A factor recurs when it occurred in at least two years (or is a holiday). Factors that always fall a fixed number
    of days apart move together: each member's own rule votes for the group's date, so Cyber Monday follows Black
    Friday even when it happened to be the first Monday of December twice.
    """
    cols = ["date", "factor_name", "impact_multiplier"]
    if external_factors is None or external_factors.empty:
        return pd.DataFrame(columns=cols)
    ef = external_factors.copy()
    ef["date"] = pd.to_datetime(ef["date"]).dt.normalize()
    if "impact_multiplier" not in ef:
        ef["impact_multiplier"] = 1.0
    ef["impact_multiplier"] = pd.to_numeric(ef["impact_multiplier"], errors="coerce").fillna(1.0)
    given = ef[(ef["date"] >= start) & (ef["date"] <= end)][cols]
    rows = [given]
    info: dict[str, tuple[list[pd.Timestamp], int, float]] = {}
    for name, g in ef.groupby("factor_name"):
        runs = _runs(g["date"])
        starts = [r[0] for r in runs]
        kind = str(g["factor_type"].iloc[0]).lower() if "factor_type" in g else ""
        if len({x.year for x in starts}) >= 2 or kind == "holiday":
            info[str(name)] = (starts, runs[-1][1], float(g["impact_multiplier"].mean()))
    recurring = {n: v[0] for n, v in info.items() if len(v[0]) >= 2}
    group_of = {n: grp for grp in _groups(recurring) for n in grp}
    for name, (starts, length, mult) in info.items():
        named = ef.loc[ef["factor_name"] == name, "date"]
        for year in range(starts[-1].year + 1, end.year + 1):
            s = _next_start(starts, year)
            grp = group_of.get(name)
            if grp and len(grp) > 1:  # the group's consensus date, shifted by this member's offset
                votes = [p - pd.Timedelta(days=off) for m, off in grp.items()
                         if (p := _next_start(recurring[m], year)) is not None]
                if votes:
                    anchor = pd.Series(votes).mode().sort_values().iloc[0]
                    s = anchor + pd.Timedelta(days=grp[name])
            if s is None or s + pd.Timedelta(days=length - 1) < start or s > end:
                continue
            if ((named - s).abs() <= pd.Timedelta(days=20)).any():  # the table already dates it
                continue
            days = pd.date_range(s, periods=length)
            days = days[(days >= start) & (days <= end)]
            rows.append(pd.DataFrame({"date": days, "factor_name": name, "impact_multiplier": mult}))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)
    return out.sort_values("date").reset_index(drop=True)


# --------------------------------------------------------------------------------------------- baseline model
class _Baseline:
    """Least squares on trend, yearly Fourier terms, weekday and per-factor dummies (small ridge for stability)."""

    def __init__(self, origin: pd.Timestamp, names: list[str], yearly: int) -> None:
        self.origin, self.names, self.yearly = origin, names, yearly

    def design(self, dates: pd.DatetimeIndex, factors: pd.DataFrame) -> np.ndarray:
        t = (dates - self.origin).days.to_numpy(dtype=float) / 365.25
        cols = [np.ones(len(dates)), t]
        doy = 2 * np.pi * dates.day_of_year.to_numpy(dtype=float) / 365.25
        for k in range(1, self.yearly + 1):
            cols += [np.sin(k * doy), np.cos(k * doy)]
        wd = dates.day_of_week.to_numpy()
        cols += [(wd == d).astype(float) for d in range(1, 7)]
        idx = pd.Index(dates)
        for name in self.names:
            days = factors.loc[factors["factor_name"] == name, "date"]
            cols.append(idx.isin(days).astype(float))
        return np.column_stack(cols)


def _ridge(X: np.ndarray, y: np.ndarray, ridge: float = 1e-5) -> np.ndarray:
    """Least squares with a tiny ridge on the scaled columns (intercept free), stable under collinear dummies."""
    scale = np.maximum(np.abs(X).max(axis=0), 1e-12)
    Xs = X / scale
    pen = ridge * len(y) * np.ones(X.shape[1])
    pen[0] = 0.0
    return np.linalg.solve(Xs.T @ Xs + np.diag(pen), Xs.T @ y) / scale


def _daily(history: pd.DataFrame, date_col: str) -> pd.DataFrame:
    h = history.copy()
    h[date_col] = pd.to_datetime(h[date_col]).dt.normalize()
    h = h.sort_values(date_col).drop_duplicates(date_col, keep="last").set_index(date_col)
    step = h.index.to_series().diff().dt.days.median() if len(h) > 1 else 1
    if step and step >= 6.5:  # weekly rows: spread each week over its days
        h = h.resample("D").ffill() / 7.0
    else:
        h = h.asfreq("D")
    return h


def _baseline_fit(X: np.ndarray, target: np.ndarray, multiplicative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residuals of the baseline regression, on the level or on its logarithm (seasonality,
    trend and holidays then act as multipliers, as they do when demand scales a growing business)."""
    z = np.log(np.maximum(target, 0.01 * np.nanmedian(np.abs(target)) + 1e-9)) if multiplicative else target
    coef = _ridge(X, z)
    return coef, z - X @ coef


def _level(Xf: np.ndarray, coef: np.ndarray, resid: np.ndarray, multiplicative: bool) -> np.ndarray:
    mu = Xf @ coef
    return np.exp(mu) * np.mean(np.exp(resid)) if multiplicative else mu


def _choose_form(X: np.ndarray, target: np.ndarray, holdout: int = 56) -> bool:
    """Multiplicative baseline or additive: whichever forecasts the last ``holdout`` days of the training data
    better from the days before them (decided on the training data alone)."""
    if np.nanmin(target) <= 0 or len(target) < holdout + 180:
        return False
    a, b = slice(0, len(target) - holdout), slice(len(target) - holdout, None)
    err = {}
    for mult in (False, True):
        coef, resid = _baseline_fit(X[a], target[a], mult)
        pred = _level(X[b], coef, resid, mult)
        err[mult] = float(np.mean(np.abs(pred - target[b]) / np.abs(target[b])))
    return err[True] < err[False]


def _fit_and_project(art: Mapping[str, Any], y: pd.Series, spend: pd.DataFrame, factors: pd.DataFrame,
                     horizon: pd.DatetimeIndex, future_spend: pd.DataFrame, fixed: set[str] | None,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fit the baseline on y (history) and project baseline + media over ``horizon``."""
    all_spend = pd.concat([spend, future_spend])
    media = media_draws(art, all_spend, fixed)
    total = sum(media.values()) if media else np.zeros((1, len(all_spend)))
    n = len(spend)
    mean_media = total.mean(axis=0)
    target = y.to_numpy(dtype=float) - mean_media[:n]
    ok = np.isfinite(target)
    seen = factors[factors["date"] <= y.index[-1]]["factor_name"].value_counts()
    names = sorted(seen.index)
    span = (y.index[-1] - y.index[0]).days
    yearly = YEARLY_TERMS if span >= 360 else (2 if span >= 180 else 0)
    model = _Baseline(y.index[0], names, yearly)
    X = model.design(y.index, factors)[ok]
    mult = _choose_form(X, target[ok])
    coef, resid = _baseline_fit(X, target[ok], mult)
    Xf = model.design(horizon, factors)
    base = _level(Xf, coef, resid, mult)
    unseen = factors[(factors["date"].isin(horizon)) & (~factors["factor_name"].isin(names))]
    factor = np.ones(len(horizon))
    if not unseen.empty:  # a new kind of event: apply its stated multiplier to the baseline
        m = unseen.groupby("date")["impact_multiplier"].prod()
        factor = m.reindex(horizon).fillna(1.0).to_numpy()
        base = base * factor
    fut_media = total[:, n:]
    recent = resid[-min(len(resid), 365):]
    d = rng.integers(0, fut_media.shape[0], N_SAMPLES)
    e = rng.choice(recent, size=(N_SAMPLES, len(horizon)))
    growth = np.sqrt(1.0 + np.arange(1, len(horizon) + 1) / max(len(resid), 1))  # trend uncertainty grows with h
    mu = Xf @ coef
    if mult:
        sims = np.exp(mu[None, :] + e * growth[None, :]) * factor[None, :] + fut_media[d]
    else:
        sims = base[None, :] + fut_media[d] + e * growth[None, :]
    return {"mean": base + fut_media.mean(axis=0), "low": np.quantile(sims, 0.05, axis=0),
            "high": np.quantile(sims, 0.95, axis=0), "baseline": base, "media": fut_media.mean(axis=0),
            "residual_sd": np.array([resid.std(ddof=1) if resid.size > 1 else 0.0]),
            "multiplicative": np.array([mult])}


def _prepare(artifact: Mapping[str, Any], history: pd.DataFrame, date_col: str, kpi_col: str
             ) -> tuple[pd.Series, pd.DataFrame]:
    channels = list(artifact.get("channels") or {})
    if not channels:
        raise ValueError("the model has no channels")
    for col in (date_col, kpi_col):
        if col not in history.columns:
            raise ValueError(f"history has no {col!r} column (columns: {', '.join(map(str, history.columns))})")
    h = _daily(history[[date_col, kpi_col, *[c for c in channels if c in history.columns]]], date_col)
    if len(h) < 28:
        raise ValueError(f"a forecast needs at least 4 weeks of history (got {len(h)} days)")
    y = h[kpi_col].astype(float)
    spend = pd.DataFrame({c: h[c].astype(float).fillna(0.0) if c in h else 0.0 for c in channels}, index=h.index)
    return y, spend


def _mape(actual: np.ndarray, pred: np.ndarray) -> float:
    ok = np.isfinite(actual) & np.isfinite(pred) & (np.abs(actual) > 1e-9)
    return float(np.mean(np.abs(actual[ok] - pred[ok]) / np.abs(actual[ok]))) if ok.any() else float("nan")


def backtest(artifact: Mapping[str, Any], history: pd.DataFrame, external_factors: pd.DataFrame | None = None, *,
             weeks: int = 8, date_col: str = "date", kpi_col: str = "revenue", fixed: set[str] | None = None,
             seed: int = 0) -> dict[str, Any]:
    """Forecast the last ``weeks`` weeks from the data before them (baseline refitted on that data, spend as
    actually made) and compare MAPE with seasonal-naive forecasts."""
    y, spend = _prepare(artifact, history, date_col, kpi_col)
    h = weeks * 7
    if len(y) < h + 56:
        raise ValueError(f"a {weeks}-week backtest needs at least {h + 56} days of history (got {len(y)})")
    cut = len(y) - h
    test_idx = y.index[cut:]
    # holidays and planned events are known ahead: their dated rows count for the test weeks too
    factors = project_factors(external_factors, y.index[0], y.index[-1])
    res = _fit_and_project(artifact, y.iloc[:cut], spend.iloc[:cut], factors, test_idx, spend.iloc[cut:], fixed,
                           np.random.default_rng(seed))
    actual = y.iloc[cut:].to_numpy(dtype=float)
    naive = {}
    if cut >= 364:
        naive["same weekday last year"] = y.shift(364).iloc[cut:].to_numpy(dtype=float)
    last_week = y.iloc[cut - 7:cut].to_numpy(dtype=float)
    naive["last week repeated"] = np.resize(last_week, h)
    scores = {k: _mape(actual, v) for k, v in naive.items()}
    best = min(scores, key=lambda k: scores[k])
    inside = (actual >= res["low"]) & (actual <= res["high"])
    return {
        "weeks": weeks, "start": str(test_idx[0].date()), "end": str(test_idx[-1].date()),
        "mape": _mape(actual, res["mean"]), "naive_mape": scores[best], "naive": best,
        "naive_mapes": scores, "coverage": float(inside[np.isfinite(actual)].mean()),
        "dates": [str(d.date()) for d in test_idx], "actual": actual.tolist(), "forecast": res["mean"].tolist(),
        "low": res["low"].tolist(), "high": res["high"].tolist(), "naive_forecast": naive[best].tolist(),
    }


def forecast_revenue(artifact: Mapping[str, Any], history: pd.DataFrame,
                     external_factors: pd.DataFrame | None = None, *, days: int = 90,
                     spend: Mapping[str, float] | None = None, date_col: str = "date", kpi_col: str = "revenue",
                     fixed: set[str] | None = None, history_days: int = 180, backtest_weeks: int | None = 8,
                     seed: int = 0) -> dict[str, Any]:
    """Daily revenue for the ``days`` after the history, at the planned daily spend per channel (default: each
    channel's current run rate from the model), with a 90% interval and, optionally, the backtest."""
    if not 1 <= int(days) <= 730:
        raise ValueError(f"days must be between 1 and 730 (got {days})")
    days = int(days)
    y, hist_spend = _prepare(artifact, history, date_col, kpi_col)
    channels = artifact["channels"]
    unknown = sorted(set(spend or {}) - set(channels))
    if unknown:
        raise ValueError(f"unknown channel(s) in spend: {', '.join(unknown)}; known: {', '.join(channels)}")
    plan = {}
    for name, ch in channels.items():
        v = float((spend or {}).get(name, ch.get("current_daily_spend") or 0.0))
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"planned spend for {name} must be a non-negative amount (got {v})")
        plan[name] = v
    horizon = pd.date_range(y.index[-1] + pd.Timedelta(days=1), periods=days)
    future = pd.DataFrame({c: np.full(days, plan[c]) for c in channels}, index=horizon)
    factors = project_factors(external_factors, y.index[0], horizon[-1])
    res = _fit_and_project(artifact, y, hist_spend, factors, horizon, future, fixed, np.random.default_rng(seed))
    tail = y.iloc[-history_days:]
    events = factors[factors["date"] >= horizon[0]].drop_duplicates(["date", "factor_name"])
    out: dict[str, Any] = {
        "dates": [str(d.date()) for d in horizon],
        "mean": res["mean"].tolist(), "low": res["low"].tolist(), "high": res["high"].tolist(),
        "baseline": res["baseline"].tolist(), "media": res["media"].tolist(),
        "total": {"mean": float(res["mean"].sum()), "days": days},
        "spend": plan, "spend_per_day": float(sum(plan.values())),
        "history": {"dates": [str(d.date()) for d in tail.index],
                    "actual": [None if not np.isfinite(v) else float(v) for v in tail.to_numpy(dtype=float)]},
        "events": [{"date": str(r.date.date()), "name": str(r.factor_name)} for r in events.itertuples()],
        "backtest": None,
    }
    if backtest_weeks:
        try:
            out["backtest"] = backtest(artifact, history, external_factors, weeks=backtest_weeks,
                                       date_col=date_col, kpi_col=kpi_col, fixed=fixed, seed=seed)
        except ValueError as e:  # too little history for a backtest: say so, keep the forecast
            out["backtest"] = {"weeks": backtest_weeks, "mape": None, "naive_mape": None, "error": str(e)}
    return out
