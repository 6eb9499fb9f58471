"""Fit a marketing mix model and return a self-contained, JSON-serialisable artifact.

Pipeline: validate the wide table (refusing what cannot be fitted, with the reason) → baseline design (trend,
seasonality, weekdays, external factors, controls) → noise weights where the noise grows with the KPI's level →
the elasticity of media effects to seasonal demand (a small grid; 0 where effects do not follow the season) → point
fit by variable projection over per-channel (decay, half, shape) from several starts (``core.mmm.estimate``) → a
time-ordered holdout refit for out-of-sample accuracy → block-bootstrap refits for 90% intervals on every reported
figure (``core.mmm.bootstrap``) → per-channel ROAS, marginal ROAS, response curve, optimal spend at the target
marginal ROAS, seasonality indices, decomposition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.mmm.adstock import geometric_adstock
from core.mmm.bootstrap import bootstrap
from core.mmm.design import Prepared, baseline_design, demand_index, prepare
from core.mmm.estimate import Bounds, Problem, Solution, fit_problem, random_starts
from core.mmm.saturation import hill, hill_derivative

__all__ = ["fit_mmm", "optimal_spend"]

ARTIFACT_VERSION = 1
LO_Q, HI_Q = 5.0, 95.0
WIDE_RATIO = 2.0  # a ROAS interval whose ends differ by more than this factor is flagged as wide
DEMAND_GRID = (0.0, 0.25, 0.5)  # candidate elasticities of media effects to seasonal demand (0 = none; measured:
# a grid up to 1.0 let in-sample fit pick too-high values on TechStyle, true 0.25, and cost accuracy)


def _hill_slope(s: np.ndarray, beta: np.ndarray, half: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """beta·hill'(s) elementwise (broadcasting), 0 at s = 0 unless shape ≤ 1."""
    s = np.maximum(s, 1e-12)
    r = np.exp(np.minimum(shape * (np.log(s) - np.log(half)), 700.0))
    return beta * shape * r / (s * (1.0 + r) ** 2)


def optimal_spend(beta: np.ndarray, half: np.ndarray, shape: np.ndarray, target: float) -> np.ndarray:
    """Largest daily spend where the marginal response ``beta·hill'(s)`` is still ≥ target (0 if it never is)."""
    beta, half, shape = (np.atleast_1d(np.asarray(v, float))[:, None] for v in (beta, half, shape))
    rel = np.geomspace(1e-3, 1e3, 400)[None, :]
    m = _hill_slope(rel * half, beta, half, shape)
    ok = m >= target
    any_ok = ok.any(axis=1) & (beta[:, 0] > 0)
    j = np.where(any_ok, ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
    lo = rel[0, j] * half[:, 0]
    hi = rel[0, np.minimum(j + 1, rel.shape[1] - 1)] * half[:, 0]
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        up = _hill_slope(mid, beta[:, 0], half[:, 0], shape[:, 0]) >= target
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return np.where(any_ok, lo, 0.0)


def _band(draws: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conservative 90% bootstrap band per column: the union of the percentile and "basic" (reflected) intervals.

    The percentile interval inherits the estimator's bias; the basic interval corrects for it but fails when the
    draws are skewed (e.g. two collinear channels trading effects). Their union covers both failure modes and is
    barely wider than either where the draws are symmetric. Positive quantities are reflected on the log scale.
    """
    d = np.asarray(draws, float).reshape(len(draws), -1)
    p = np.asarray(point, float).reshape(-1)
    lo_q, hi_q = np.nanpercentile(d, [LO_Q, HI_Q], axis=0)
    pos = (p > 0) & (lo_q > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_lo = np.where(pos, p * p / hi_q, np.maximum(2 * p - hi_q, np.minimum(p, 0.0)))
        b_hi = np.where(pos, p * p / lo_q, 2 * p - lo_q)
    return np.minimum.reduce([lo_q, b_lo, p]), np.maximum.reduce([hi_q, b_hi, p])


def _interval(draws: np.ndarray, point: float) -> list[float]:
    """90% interval of a scalar (see :func:`_band`)."""
    d = np.asarray(draws, float)
    d = d[np.isfinite(d)]
    if not len(d):
        return [float(point), float(point)]
    lo, hi = _band(d[:, None], np.array([point]))
    return [float(lo[0]), float(hi[0])]


def _contributions(prep: Prepared, sol: Solution, scale: np.ndarray, seg: tuple[np.ndarray, np.ndarray],
                   mult: np.ndarray | None = None) -> np.ndarray:
    """Per-period incremental KPI per channel (n, C), each segment with its own β, scaled by the demand multiplier."""
    x = prep.spend / prep.days
    seg_ch, seg_mask = seg
    out = np.zeros_like(x)
    m = np.ones(len(x)) if mult is None else mult
    for k, c in enumerate(seg_ch):
        d, lh, ls = sol.theta[c]
        h = hill(geometric_adstock(x[:, c], d), np.exp(lh) * scale[c], np.exp(ls))
        out[:, c] += prep.days * sol.beta[k] * h * seg_mask[:, k] * m
    return out


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


def _index(contrib: np.ndarray, spend: np.ndarray, groups: np.ndarray, labels: list[int]) -> dict[str, float | None]:
    """Contribution per unit spend in each group relative to the overall ratio (1.0 = average)."""
    overall = contrib.sum() / spend.sum() if spend.sum() > 0 else 0.0
    out: dict[str, float | None] = {}
    for g in labels:
        m = groups == g
        s = spend[m].sum()
        out[str(g)] = float(contrib[m].sum() / s / overall) if (s > 0 and overall > 0) else None
    return out


def fit_mmm(df: pd.DataFrame, date_col: str = "date", kpi_col: str = "revenue", spend_cols: list[str] | None = None,
            control_cols: list[str] | None = None, external_factors: pd.DataFrame | None = None, *, seed: int = 0,
            n_boot: int = 200, holdout_days: int | None = None, target_roas: float = 1.0,
            progress: Callable[[float, str], None] | None = None,
            platform_revenue: Mapping[str, float] | None = None,
            fixed_cost_cols: list[str] | None = None, n_starts: int = 4) -> dict[str, Any]:
    """Fit the MMM on a wide table (one row per day or week) and return the artifact (see module docs).

    ``spend_cols`` defaults to every numeric column other than the KPI and controls. ``holdout_days`` (default 56,
    i.e. 8 weeks) of the most recent data are held out in a separate refit to measure out-of-sample MAPE.
    ``platform_revenue`` (channel → platform-reported revenue total) defaults to ``df.attrs["platform_revenue"]``.
    """
    # Small matrices: BLAS threads only add contention (measured 15x slower on a busy 2-core machine).
    with threadpool_limits(limits=1):
        return _fit(df, date_col, kpi_col, spend_cols, control_cols, external_factors, seed, n_boot, holdout_days,
                    target_roas, progress, platform_revenue, fixed_cost_cols, n_starts)


def _fit(df, date_col, kpi_col, spend_cols, control_cols, external_factors, seed, n_boot, holdout_days,  # noqa: C901
         target_roas, progress, platform_revenue, fixed_cost_cols, n_starts) -> dict[str, Any]:
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
    B, bnames, pen = baseline_design(prep.dates, prep.days, prep.controls, prep.control_names, ef_base, y=prep.y)
    n, C = prep.spend.shape
    x = prep.spend / prep.days
    scale = np.array([x[:, c][x[:, c] > 0].mean() for c in range(C)])
    bounds = Bounds(0.9 if prep.days == 1 else 0.8, (np.log(0.1), np.log(10.0)), (np.log(0.5), np.log(3.0)))
    rng = np.random.default_rng(seed)

    mult = None

    w_h: np.ndarray | None = None  # heteroscedasticity weights (set after the first pass)

    def problem(w: np.ndarray | None, sigma2: float | None, y: np.ndarray | None = None) -> Problem:
        if w_h is not None:
            w = w_h if w is None else w * w_h
        return Problem(prep.y if y is None else y, B, pen, x, prep.days, scale, w=w, sigma2=sigma2, segments=seg,
                       mult=mult)

    # point fit: a first pass sets the noise level for the weak prior on half/shape, then a multi-start search
    report(0.02, "fitting")
    first = fit_problem(problem(None, None), bounds, random_starts(rng, C, bounds, 1), maxiter=100)
    sigma2 = max(first.objective, 1e-6)
    # noise that grows with the KPI's level (multiplicative): weight periods by 1/level^p from here on
    lvl = B @ first.gamma + _contributions(prep, first, scale, seg).sum(axis=1)
    w_h = _variance_weights(lvl, prep.y - lvl)
    if w_h is not None:
        sigma2 = max(float(np.mean(w_h * (prep.y - lvl) ** 2) / np.var(prep.y)), 1e-6)
    # Media × seasonal demand: effect_t = β·s_t^g·hill(adstock(x)) with s the KPI's seasonal index (yearly, weekday
    # and event part of a log-linear fit, trend excluded) and g from a small grid by the penalised objective plus a
    # BIC price for g. Every candidate, g = 0 included, gets the same two baseline columns shaped like the index
    # (s^g and s^g × trend; s^g₁ with the smallest positive grid value for g = 0): a multiplicative baseline season
    # is then explained by the baseline, and a saturated always-on channel, whose feature is ≈ s^g, cannot pose as
    # seasonal baseline revenue. So g > 0 is chosen only where media effects themselves follow the season.
    s_idx = demand_index(prep.dates, prep.days, ef_base, prep.y)
    B0, pen0 = B, pen
    tt = np.linspace(0.0, 1.0, n)
    g_min = min((v for v in DEMAND_GRID if v > 0), default=0.25)
    seasonal = bool(np.std(np.log(s_idx)) > 0.01)  # below ~1% the index columns would duplicate the intercept

    def with_demand(g: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if not seasonal:
            return B0, pen0, None
        gb = g if g > 0 else g_min
        m = s_idx**gb / np.mean(s_idx**gb)  # 1.0 = the average period: response curves are at average demand
        return np.column_stack([B0, m, m * tt]), np.r_[pen0, 0.0, 0.0], (m if g > 0 else None)

    demand_g, best = 0.0, np.inf
    if seasonal:
        for g in DEMAND_GRID:
            B, pen, mult = with_demand(g)
            f = fit_problem(problem(None, sigma2), bounds, [first.theta.ravel()], maxiter=100).objective
            if g > 0:
                f += np.log(n) * sigma2 / n
            if f < best:
                demand_g, best = g, f
        bnames = [*bnames, "demand_index", "demand_index_x_trend"]
    B, pen, mult = with_demand(demand_g)
    prob = problem(None, sigma2)
    starts = [first.theta.ravel(), *random_starts(rng, C, bounds, max(n_starts, 1))[1:]]
    sol = fit_problem(prob, bounds, starts)
    report(0.2, "holdout")

    # time-ordered holdout
    h = int(round((56 if holdout_days is None else holdout_days) / prep.days))
    mape_holdout: float | None = None
    if h > 0:
        if n - h < max(3 * C + B.shape[1], 2 * h):
            warnings.append(f"holdout skipped: {n} periods are too few to hold out {h}")
            h = 0
        else:
            mask = np.r_[np.ones(n - h), np.zeros(h)]
            hp = problem(mask, sigma2)
            hsol = fit_problem(hp, bounds, random_starts(np.random.default_rng(seed + 2), C, bounds, 3))
            pred = B @ hsol.gamma + _contributions(prep, hsol, scale, seg, mult).sum(axis=1)
            mape_holdout = _mape(prep.y[-h:], pred[-h:])
    report(0.3, "bootstrap")

    block = 28 if prep.days == 1 else 4
    step = max(n_boot // 10, 1)
    fit0 = B @ sol.gamma + _contributions(prep, sol, scale, seg, mult).sum(axis=1)
    n_par = B.shape[1] + 4 * C
    resid = (prep.y - fit0) * np.sqrt(n / max(n - n_par, 1))
    draws = bootstrap(lambda yy, w: problem(w, sigma2, yy), n, sol, bounds, n_boot, block, seed + 1, fit0, resid,
                      resid_scale=None if w_h is None else 1.0 / np.sqrt(w_h),
                      progress=lambda b: report(0.3 + 0.65 * (b + 1) / n_boot, "bootstrap")
                      if (b + 1) % step == 0 else None)

    # ---- outputs -------------------------------------------------------------------------------------------
    contrib = _contributions(prep, sol, scale, seg, mult)
    base = B @ sol.gamma
    fitted = base + contrib.sum(axis=1)
    y = prep.y
    r2 = float(1 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2))
    D = len(draws)
    dcontrib = (np.stack([_contributions(prep, d, scale, seg, mult).sum(axis=0) for d in draws]) if D
                else np.zeros((0, C)))
    half_p = np.exp(sol.theta[:, 1]) * scale
    shape_p = np.exp(sol.theta[:, 2])
    last = np.array([int(np.nonzero(seg[0] == c)[0][-1]) for c in range(C)])  # the segment in force at the end
    beta_now = sol.beta[last]
    dbeta = np.array([d.beta[last] for d in draws]).reshape(D, C)
    dhalf = np.array([np.exp(d.theta[:, 1]) * scale for d in draws]).reshape(D, C)
    dshape = np.array([np.exp(d.theta[:, 2]) for d in draws]).reshape(D, C)
    ddecay = np.array([d.theta[:, 0] for d in draws]).reshape(D, C)
    opt_p = optimal_spend(beta_now, half_p, shape_p, target_roas)
    pr = dict(platform_revenue if platform_revenue is not None else df.attrs.get("platform_revenue", {}) or {})
    fixed = set(fixed_cost_cols) if fixed_cost_cols is not None else _fixed_monthly(prep)
    if fixed_cost_cols is None and fixed:
        seg_notes.extend(f"{c}: spend is the same every calendar month (a fixed fee), so it is kept at its "
                         "current level in recommendations" for c in sorted(fixed))
    recent = max(int(round(28 / prep.days)), 1)
    months = prep.dates.month.to_numpy()
    wdays = prep.dates.day_of_week.to_numpy()
    total_y = float(y.sum())
    channels: dict[str, Any] = {}
    for c, name in enumerate(prep.channels):
        spend_total = float(prep.spend[:, c].sum())
        cur = float(prep.spend[-recent:, c].sum() / (recent * prep.days))
        b, hf, k = float(beta_now[c]), float(half_p[c]), float(shape_p[c])
        mroas = float(b * hill_derivative(cur, hf, k))
        dm = _hill_slope(np.full(D, cur), dbeta[:, c], dhalf[:, c], dshape[:, c]) if cur > 0 else np.full(D, mroas)
        dopt = optimal_spend(dbeta[:, c], dhalf[:, c], dshape[:, c], target_roas) if D else np.zeros(0)
        opt = float(opt_p[c])
        if name in fixed:
            opt, dopt = cur, np.full(D, cur)
        gain = lambda s, b=b, hf=hf, k=k: float(b * hill(s, hf, k) - target_roas * s)  # noqa: E731
        hi_spend = max(2.0 * cur, 1.25 * opt, 1.2 * float(np.percentile(x[:, c], 95)), hf)
        grid = np.linspace(0.0, hi_spend, 41)
        if D:
            rr = (grid[None, :] / dhalf[:, c, None]) ** dshape[:, c, None]
            curve_d = dbeta[:, c, None] * rr / (1.0 + rr)
        else:
            curve_d = None
        mean_curve = b * hill(grid, hf, k)
        if curve_d is not None:
            lo_c, hi_c = _band(curve_d, mean_curve)
        else:
            lo_c = hi_c = mean_curve
        cc = contrib[:, c]
        seas = {"month": _index(cc, prep.spend[:, c], months, list(range(1, 13))),
                "weekday": (_index(cc, prep.spend[:, c], wdays, list(range(7))) if prep.days == 1
                            else {str(i): None for i in range(7)})}
        prt = pr.get(name)
        channels[name] = {
            "spend_total": spend_total,
            "contribution": float(cc.sum()),
            "contribution_interval": _interval(dcontrib[:, c], float(cc.sum())),
            "share": float(cc.sum() / total_y) if total_y else 0.0,
            "roas": dict(zip(("low", "high"), _interval(dcontrib[:, c] / spend_total, cc.sum() / spend_total),
                             strict=True)) | {"mean": float(cc.sum() / spend_total)},
            "marginal_roas": mroas, "marginal_roas_interval": _interval(dm, mroas),
            "current_daily_spend": cur,
            "optimal_daily_spend": opt, "optimal_daily_spend_interval": _interval(dopt, opt),
            "opportunity_per_day": gain(opt) - gain(cur),
            "adstock": {"type": "geometric", "decay": float(sol.theta[c, 0]), "per": prep.granularity},
            "saturation": {"type": "hill", "half": hf, "shape": k},
            "beta": b,
            "params_draws": {"beta": dbeta[:, c].tolist(), "half": dhalf[:, c].tolist(),
                             "shape": dshape[:, c].tolist(), "decay": ddecay[:, c].tolist()},
            "curve": {"spend": grid.tolist(), "mean": mean_curve.tolist(), "low": lo_c.tolist(),
                      "high": hi_c.tolist()},
            "seasonality": seas,
            "platform_roas": (float(prt) / spend_total if prt is not None and spend_total > 0 else None),
            "fixed_cost": name in fixed,
        }
        ch = channels[name]
        ks = np.nonzero(seg[0] == c)[0]
        if len(ks) > 1 and sol.beta[ks[0]] > 0:
            ratio = float(sol.beta[ks[-1]] / sol.beta[ks[0]])
            dr = np.array([d.beta[ks[-1]] / d.beta[ks[0]] if d.beta[ks[0]] > 0 else np.nan for d in draws])
            ch["efficiency_change"] = {"ratio": ratio, "interval": _interval(dr, ratio),
                                       "date": str(prep.dates[int(np.argmax(seg[1][:, ks[-1]]))].date())}
        ch["roas"] = {"mean": ch["roas"]["mean"], "low": ch["roas"]["low"], "high": ch["roas"]["high"]}
        if hf > 5 * max(x[:, c].max(), 1e-9) or (D and np.percentile(dopt, HI_Q) > 3 * max(x[:, c].max(), 1e-9)):
            warnings.append(f"{name}: the data show no clear saturation within the observed spend range, so its "
                            "optimal spend is an extrapolation (see its interval)")
    for name, ch in channels.items():
        lo, hi = ch["roas"]["low"], ch["roas"]["high"]
        if hi > 0 and hi > WIDE_RATIO * max(lo, 1e-9):
            warnings.append(f"{name}: ROAS interval {lo:.2f}–{hi:.2f} is wide: the data cannot separate this "
                            "channel's effect well from the baseline and the other channels")
    report(1.0, "done")
    return {
        "version": ARTIFACT_VERSION, "kpi": kpi_col, "granularity": prep.granularity,
        "periods_per_year": 365 if prep.days == 1 else 52,
        "start": str(prep.dates[0].date()), "end": str(prep.dates[-1].date()), "n_obs": int(n),
        "target_roas": float(target_roas), "seed": int(seed),
        "channels": channels,
        "baseline": {"total": float(base.sum()), "share": float(base.sum() / total_y) if total_y else 0.0},
        "baseline_terms": bnames,
        "decomposition": {"dates": [str(d.date()) for d in prep.dates], "actual": y.tolist(),
                          "fitted": fitted.tolist(), "baseline": base.tolist(),
                          "channels": {name: contrib[:, c].tolist() for c, name in enumerate(prep.channels)},
                          # per-period multiplier on every channel's curve (s_t^g; 1.0 = average demand)
                          "media_multiplier": (np.ones(n) if mult is None else mult).tolist()},
        "media_demand_elasticity": float(demand_g),
        "fit": {"r2": r2, "mape": _mape(y, fitted), "mape_holdout": mape_holdout, "holdout_periods": int(h),
                "n_boot": int(D), "seconds": round(time.perf_counter() - t0, 3)},
        "warnings": warnings,
        "notes": seg_notes,
    }
