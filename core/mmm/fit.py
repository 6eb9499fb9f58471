"""Fit a marketing mix model and return a self-contained, JSON-serialisable artifact.

Pipeline: validate the wide table (refusing what cannot be fitted, with the reason) → baseline design (trend,
seasonality, weekdays, the user's events or else the country's public holidays and retail days, controls) → for
each KPI form (additive; log, where the KPI is positive) a first pass for the noise level, noise weights and the
media × demand elasticity, a common ROAS prior, and a multi-start point fit by variable projection
(``core.mmm.estimate``) → the form that predicts held-out weeks best in rolling-origin cross-validation
(``core.mmm.select``) → per channel, a delayed-peak carry-over where it explains clearly more → a time-ordered holdout
refit for out-of-sample accuracy → block-bootstrap refits for 90% intervals (``core.mmm.bootstrap``) → changes in a
channel's efficiency that no factor names (``core.mmm.breaks``) → the artifact (``core.mmm.report``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.mmm.artifact import optimal_spend
from core.mmm.bootstrap import bootstrap
from core.mmm.calendar import DEFAULT_COUNTRY, calendar_events
from core.mmm.design import Prepared, baseline_design, demand_index, prepare
from core.mmm.estimate import Bounds, RoasPrior, Solution, fit_problem, random_starts
from core.mmm.lift import LiftTests, prepare_lift_tests
from core.mmm.report import Fitted, build_artifact
from core.mmm.select import choose_stages, for_origin, rescue_zero_channels, rolling_origin_error
from core.mmm.spec import Spec, predict

__all__ = ["fit_mmm", "optimal_spend"]

DEMAND_GRID = (0.0, 0.25, 0.5)  # candidate elasticities of media effects to seasonal demand (0 = none; measured:
# a grid up to 1.0 let in-sample fit pick too-high values on TechStyle, true 0.25, and cost accuracy)
ROAS_PRIOR_REL_SD = 1.5  # sd of the common ROAS prior relative to its mean (the pooled ROAS of a first pass)
HALF_BOUNDS = (0.1, 10.0)  # half-saturation relative to the channel's mean positive daily spend
PRIOR_PERTURB = True  # bootstrap replicates also draw the ROAS prior's mean (honest intervals where data are thin)
KPI_FORMS = ("auto", "additive", "log")
AUTO_FORMS = ("additive", "log")  # the forms "auto" compares (log only where the KPI is positive)


def _fixed_monthly(prep: Prepared) -> set[str]:
    """Channels whose spend totals the same every full calendar month (a subscription or platform fee)."""
    months = prep.dates.to_period("M")
    counts = pd.Series(1, index=months).groupby(level=0).sum()
    per_month = 28 / prep.days
    full = counts.index[counts.to_numpy() >= per_month]
    if prep.days > 1 or len(full) < 3:
        return set()
    out = set()
    for c, name in enumerate(prep.channels):
        tot = pd.Series(prep.spend[:, c], index=months).groupby(level=0).sum().loc[full]
        daily = prep.spend[:, c]
        if tot.mean() > 0 and tot.std() / tot.mean() < 0.01 and daily.std() > 0.05 * daily.mean():
            out.add(name)
    return out


def _segments(prep: Prepared, external_factors: pd.DataFrame | None
              ) -> tuple[tuple[np.ndarray, np.ndarray], list[str], set[str]]:
    """Efficiency breaks: an external factor whose type says "change" and whose name or description names a
    channel (e.g. a privacy change at an ad platform) splits that channel's β at the factor's date.

    Returns (column → channel, masks), notes for the report, and the factor names used (left out of the baseline).
    """
    n, C = prep.spend.shape
    cols: list[tuple[int, np.ndarray]] = []
    notes: list[str] = []
    used: set[str] = set()
    rows = []
    if external_factors is not None and len(external_factors) and "factor_type" in external_factors.columns:
        ef = external_factors.copy()
        ef["date"] = pd.to_datetime(ef["date"], errors="coerce")
        ef = ef.dropna(subset=["date"])
        rows = [r for r in ef.to_dict("records") if "change" in str(r.get("factor_type", "")).lower()]
    min_len = max(int(round(28 / prep.days)), 4)
    for c, name in enumerate(prep.channels):
        cuts = []
        for r in rows:
            text = f"{r.get('factor_name', '')} {r.get('description', '')}".lower()
            if name.lower() not in text:
                continue
            i = int(np.searchsorted(prep.dates.values, np.datetime64(r["date"]), side="left"))
            if min_len <= i <= n - min_len and (prep.spend[:i, c] > 0).sum() >= min_len \
                    and (prep.spend[i:, c] > 0).sum() >= min_len:
                cuts.append(i)
                used.add(str(r.get("factor_name")))
                notes.append(f"{name}: efficiency estimated separately before and after "
                             f"{r.get('factor_name')} ({pd.Timestamp(r['date']).date()})")
        edges = [0, *sorted(set(cuts)), n]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            m = np.zeros(n)
            m[a:b] = 1.0
            cols.append((c, m))
    return (np.array([c for c, _ in cols]), np.column_stack([m for _, m in cols])), notes, used


def _variance_weights(level: np.ndarray, resid: np.ndarray) -> np.ndarray | None:
    """Observation weights (mean 1) for noise whose spread grows with the KPI's level (multiplicative noise, common
    in revenue: a 5× Black Friday day is also 5× noisier). The power p of var ∝ level^p is estimated from the
    residuals' log-squares (clipped to [0, 2]); None when the noise looks homoscedastic (p < 0.3) or the level is not
    positive. Weighting by 1/level^p stops the few loudest days from dominating the fit."""
    if (level <= 0).any() or len(level) < 30:
        return None
    lv = np.log(level)
    z = np.log(resid**2 + 1e-6 * np.mean(resid**2))
    p = float(np.clip(np.cov(lv, z)[0, 1] / max(np.var(lv, ddof=1), 1e-12), 0.0, 2.0))
    if p < 0.3:
        return None
    w = np.exp(-p * (lv - lv.mean()))
    return w / w.mean()


def _mape(y: np.ndarray, f: np.ndarray) -> float | None:
    ok = np.abs(y) > 1e-9
    return float(np.mean(np.abs(y[ok] - f[ok]) / np.abs(y[ok]))) if ok.any() else None


def fit_mmm(df: pd.DataFrame, date_col: str = "date", kpi_col: str = "revenue", spend_cols: list[str] | None = None,
            control_cols: list[str] | None = None, external_factors: pd.DataFrame | None = None, *, seed: int = 0,
            n_boot: int = 200, holdout_days: int | None = None, target_roas: float = 1.0,
            progress: Callable[[float, str], None] | None = None,
            platform_revenue: Mapping[str, float] | None = None,
            fixed_cost_cols: list[str] | None = None, n_starts: int = 4, kpi_form: str = "auto",
            country: str | None = DEFAULT_COUNTRY, lift_tests: pd.DataFrame | None = None) -> dict[str, Any]:
    """Fit the MMM on a wide table (one row per day or week) and return the artifact (see module docs).

    ``spend_cols`` defaults to every numeric column other than the KPI and controls. ``holdout_days`` (default 56,
    i.e. 8 weeks) of the most recent data are held out in a separate refit to measure out-of-sample MAPE.
    ``platform_revenue`` (channel → platform-reported revenue total) defaults to ``df.attrs["platform_revenue"]``.
    ``kpi_form``: "additive", "log" (multiplicative business) or "auto" (chosen by rolling-origin validation).
    ``country``: whose public holidays enter the baseline when ``external_factors`` names no events (None: none).
    ``lift_tests``: measured lifts (``core.mmm.lift``: channel, start, end, spend_change, lift, se) that calibrate
    the tested channels' response.
    """
    if kpi_form not in KPI_FORMS:
        raise ValueError(f"kpi_form must be one of {', '.join(KPI_FORMS)} (got {kpi_form!r})")
    # Small matrices: BLAS threads only add contention (measured 15x slower on a busy 2-core machine).
    with threadpool_limits(limits=1):
        fitted = _fit(df, date_col, kpi_col, spend_cols, control_cols, external_factors, seed, n_boot, holdout_days,
                      target_roas, progress, fixed_cost_cols, n_starts, kpi_form, country, lift_tests)
        pr = dict(platform_revenue if platform_revenue is not None else df.attrs.get("platform_revenue", {}) or {})
        art = build_artifact(fitted, kpi_col, target_roas, seed, pr)
        (progress or (lambda f, m: None))(1.0, "done")
        return art


def _spec(form: str, prep: Prepared, x: np.ndarray, scale: np.ndarray, seg: tuple[np.ndarray, np.ndarray],
          ef_base: pd.DataFrame | None, bounds: Bounds, rng: np.random.Generator, n_starts: int,
          lift: LiftTests | None = None) -> tuple[Spec, Solution]:
    """Build one KPI form's structure (noise level, weights, demand elasticity, ROAS prior) and its point fit."""
    n, C = x.shape
    additive = form == "additive"
    y_m = prep.y if additive else np.log(prep.y)
    B, bnames, pen = baseline_design(prep.dates, prep.days, prep.controls, prep.control_names, ef_base,
                                     y=prep.y if additive else None, season_growth=additive)
    spec = Spec(form, y_m, B, bnames, pen, x, prep.days, scale, seg, np.ones(C, int))
    first = fit_problem(spec.problem(prior=False), bounds, random_starts(rng, C, bounds, 1), maxiter=100)
    sigma2 = max(first.objective, 1e-6)
    pred = predict(spec, first)
    if additive:
        # noise that grows with the KPI's level (multiplicative): weight periods by 1/level^p from here on
        w_h = _variance_weights(pred.fitted, prep.y - pred.fitted)
        if w_h is not None:
            sigma2 = max(float(np.mean(w_h * (prep.y - pred.fitted) ** 2) / np.var(prep.y)), 1e-6)
        spec = spec.with_(w_h=w_h, sigma2=sigma2)
        spec = _demand(spec, prep, ef_base, first, bounds)
    else:
        spec = spec.with_(sigma2=sigma2, smear=float(np.mean(np.exp(y_m - np.log(pred.fitted)))))
    if lift is not None:
        spec = spec.with_(lift=lift, lift_value=None if additive else pred.fitted)
    seg_ch, seg_mask = seg
    col_spend = (seg_mask * prep.spend[:, seg_ch]).sum(axis=0)
    pooled = float(pred.contrib.sum() / max(prep.spend.sum(), 1e-12))
    if pooled > 0 and ROAS_PRIOR_REL_SD:
        spec = spec.with_(roas_prior=RoasPrior(pooled, ROAS_PRIOR_REL_SD, col_spend,
                                               None if additive else pred.fitted))
    starts = [first.theta.ravel(), *random_starts(rng, C, bounds, max(n_starts, 1))[1:]]
    return spec, fit_problem(spec.problem(), bounds, starts)


def _demand(spec: Spec, prep: Prepared, ef_base: pd.DataFrame | None, first: Solution, bounds: Bounds) -> Spec:
    """Media × seasonal demand (additive form): effect_t = β·s_t^g·hill(adstock(x)) with s the KPI's seasonal index
    (yearly, weekday and event part of a log-linear fit, trend excluded) and g from a small grid by the penalised
    objective plus a BIC price for g. Every candidate, g = 0 included, gets the same two baseline columns shaped like
    the index (s^g and s^g × trend; s^g₁ with the smallest positive grid value for g = 0): a multiplicative baseline
    season is then explained by the baseline, and a saturated always-on channel, whose feature is ≈ s^g, cannot pose
    as seasonal baseline revenue. So g > 0 is chosen only where media effects themselves follow the season."""
    n = len(prep.y)
    s_idx = demand_index(prep.dates, prep.days, ef_base, prep.y)
    if not np.std(np.log(s_idx)) > 0.01:  # below ~1% the index columns would duplicate the intercept
        return spec
    tt = np.linspace(0.0, 1.0, n)
    g_min = min((v for v in DEMAND_GRID if v > 0), default=0.25)

    def with_g(g: float) -> Spec:
        gb = g if g > 0 else g_min
        m = s_idx**gb / np.mean(s_idx**gb)  # 1.0 = the average period: response curves are at average demand
        return spec.with_(B=np.column_stack([spec.B, m, m * tt]), pen=np.r_[spec.pen, 0.0, 0.0],
                          bnames=[*spec.bnames, "demand_index", "demand_index_x_trend"],
                          mult=m if g > 0 else None, demand_g=g)

    best, best_f = None, np.inf
    for g in DEMAND_GRID:
        cand = with_g(g)
        f = fit_problem(cand.problem(), bounds, [first.theta.ravel()], maxiter=100).objective
        if g > 0:
            f += np.log(n) * spec.sigma2 / n
        if f < best_f:
            best, best_f = cand, f
    return best


def _fit(df, date_col, kpi_col, spend_cols, control_cols, external_factors, seed, n_boot, holdout_days,  # noqa: C901
         target_roas, progress, fixed_cost_cols, n_starts, kpi_form, country, lift_tests) -> Fitted:
    t0 = time.perf_counter()
    if target_roas <= 0:
        raise ValueError(f"target_roas must be > 0 (got {target_roas})")
    if n_boot < 0:
        raise ValueError(f"n_boot must be ≥ 0 (got {n_boot})")
    control_cols = list(control_cols or [])
    if spend_cols is None:
        spend_cols = [c for c in df.columns if c not in (date_col, kpi_col, *control_cols)
                      and pd.api.types.is_numeric_dtype(df[c])]
    spend_cols = list(spend_cols)
    if len(spend_cols) > 20:
        raise ValueError(f"{len(spend_cols)} channels: the model supports at most 20; group small channels")
    report = progress or (lambda f, m: None)
    prep = prepare(df, date_col, kpi_col, spend_cols, control_cols, n_baseline=4)
    warnings = list(prep.warnings)
    seg, seg_notes, used = _segments(prep, external_factors)
    ef_base = external_factors
    if used:
        ef_base = external_factors[~external_factors["factor_name"].astype(str).isin(used)]
    events = "given" if ef_base is not None and len(ef_base) else "none"
    if (ef_base is None or len(ef_base) == 0) and country:
        ef_base = calendar_events(prep.dates[0], prep.dates[-1] + pd.Timedelta(days=prep.days - 1), country)
        events = f"calendar ({str(country).upper()})"
        seg_notes.append(f"No events were given: the public holidays and retail days of the {str(country).upper()} "
                         "calendar are candidate baseline effects")
    n, C = prep.spend.shape
    x = prep.spend / prep.days
    scale = np.array([x[:, c][x[:, c] > 0].mean() for c in range(C)])
    bounds = Bounds(0.9 if prep.days == 1 else 0.8, (np.log(HALF_BOUNDS[0]), np.log(HALF_BOUNDS[1])),
                    (np.log(0.5), np.log(3.0)))
    rng = np.random.default_rng(seed)
    forms = [kpi_form] if kpi_form != "auto" else [f for f in AUTO_FORMS if f == "additive" or (prep.y > 0).all()]
    if "log" in forms and (prep.y <= 0).any():
        raise ValueError(f"kpi_form 'log' needs a positive KPI; column {kpi_col!r} has zero or negative values")

    lift = None
    if lift_tests is not None and len(lift_tests):
        lift = prepare_lift_tests(lift_tests, prep.dates, prep.days, prep.channels, x)
    report(0.02, "fitting")
    fits = {f: _spec(f, prep, x, scale, seg, ef_base, bounds, rng, n_starts, lift) for f in forms}
    cv: dict[str, float | None] = {}
    if len(fits) > 1:
        report(0.12, "choosing the model form")
        cv = {f: rolling_origin_error(s, sol.theta, bounds, prep.y) for f, (s, sol) in fits.items()}
    scored = {f: v for f, v in cv.items() if v is not None}
    form = min(scored, key=scored.get) if scored else forms[0]
    spec, sol = fits[form]
    sol = rescue_zero_channels(spec, sol, bounds)
    spec, sol, delayed = choose_stages(spec, sol, bounds)
    report(0.2, "holdout")

    # time-ordered holdout
    h = int(round((56 if holdout_days is None else holdout_days) / prep.days))
    mape_holdout: float | None = None
    if h > 0:
        if n - h < max(3 * C + spec.B.shape[1], 2 * h):
            warnings.append(f"holdout skipped: {n} periods are too few to hold out {h}")
            h = 0
        else:
            mask = np.r_[np.ones(n - h), np.zeros(h)]
            hspec = for_origin(spec, n - h)
            hsol = fit_problem(hspec.problem(mask), bounds,
                               random_starts(np.random.default_rng(seed + 2), C, bounds, 3))
            mape_holdout = _mape(prep.y[-h:], predict(hspec, hsol).fitted[-h:])
    report(0.3, "bootstrap")

    block = 28 if prep.days == 1 else 4
    step = max(n_boot // 10, 1)
    pred = predict(spec, sol)
    fit0 = pred.fitted if form == "additive" else np.log(pred.fitted / spec.smear)  # on the modelled scale
    n_par = spec.B.shape[1] + 4 * C
    resid = (spec.y - fit0) * np.sqrt(n / max(n - n_par, 1))
    shifts = np.random.default_rng(seed + 5).standard_normal((max(n_boot, 1), len(sol.beta)))
    lift_shifts = np.random.default_rng(seed + 6).standard_normal((max(n_boot, 1), 0 if lift is None else
                                                                      len(lift.lift)))

    def replicate_problem(yy: np.ndarray, w: np.ndarray, b: int | None):
        """A replicate's problem: its data and weights, and (perturbed prior) its own draws of the prior's mean
        and of the measured lifts within their standard errors."""
        if b is None or not PRIOR_PERTURB:
            return spec.problem(w, yy)
        return spec.problem(w, yy, prior_shift=shifts[b], lift_shift=lift_shifts[b] if lift is not None else None)

    def tick(b: int) -> None:
        if (b + 1) % step == 0:
            report(0.3 + 0.6 * (b + 1) / n_boot, "bootstrap")

    draws = bootstrap(replicate_problem, n, sol, bounds, n_boot, block, seed + 1, fit0, resid,
                      resid_scale=None if spec.w_h is None else 1.0 / np.sqrt(spec.w_h), progress=tick)
    fixed = set(fixed_cost_cols) if fixed_cost_cols is not None else _fixed_monthly(prep)
    if fixed_cost_cols is None and fixed:
        seg_notes.extend(f"{c}: spend is the same every calendar month (a fixed fee), so it is kept at its "
                         "current level in recommendations" for c in sorted(fixed))
    report(0.95, "report")
    return Fitted(prep=prep, spec=spec, sol=sol, pred=pred, draws=draws, fixed=fixed, warnings=warnings,
                  notes=seg_notes, mape_holdout=mape_holdout, holdout_periods=h, cv=cv,
                  delayed=[prep.channels[c] for c in delayed], events=events, started=t0)
