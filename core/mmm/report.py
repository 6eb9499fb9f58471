"""The model artifact: per-channel ROAS, marginal ROAS, curves and optimal spend with 90% intervals, the
decomposition and fit diagnostics, from a fitted structure and its bootstrap draws (see ``core.mmm.fit``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.mmm.artifact import HI_Q, band, hill_slope, interval, log_curve_as_hill, optimal_spend
from core.mmm.breaks import efficiency_breaks
from core.mmm.design import Prepared
from core.mmm.estimate import Solution
from core.mmm.health import model_health
from core.mmm.saturation import hill, hill_derivative
from core.mmm.spec import Prediction, Spec, predict

__all__ = ["Fitted", "build_artifact"]

ARTIFACT_VERSION = 2
WIDE_RATIO = 2.0  # a ROAS interval whose ends differ by more than this factor is flagged as wide


@dataclass
class Fitted:
    """Everything a fit decided, before it is written up as the artifact."""

    prep: Prepared
    spec: Spec  # the chosen structure
    sol: Solution  # its point estimate
    pred: Prediction
    draws: list[Solution]  # bootstrap replicates of ``spec``
    fixed: set[str]  # fixed-fee channels, decided here once
    warnings: list[str]
    notes: list[str]
    mape_holdout: float | None
    holdout_periods: int
    cv: dict[str, float | None]  # rolling-origin MAPE per KPI form tried
    delayed: list[str]  # channels given a delayed-peak carry-over
    events: str  # "given", "none" or "calendar (XX)"
    started: float  # perf_counter at the start of the fit


def _index(contrib: np.ndarray, spend: np.ndarray, groups: np.ndarray, labels: list[int]) -> dict[str, float | None]:
    """Contribution per unit spend in each group relative to the overall ratio (1.0 = average)."""
    overall = contrib.sum() / spend.sum() if spend.sum() > 0 else 0.0
    out: dict[str, float | None] = {}
    for g in labels:
        m = groups == g
        s = spend[m].sum()
        out[str(g)] = float(contrib[m].sum() / s / overall) if (s > 0 and overall > 0) else None
    return out


def _mape(y: np.ndarray, f: np.ndarray) -> float | None:
    ok = np.abs(y) > 1e-9
    return float(np.mean(np.abs(y[ok] - f[ok]) / np.abs(y[ok]))) if ok.any() else None


def curve_params(spec: Spec, sols: list, preds: list[Prediction]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per solution and channel, the steady-state daily response as Hill (beta, half, shape), each (S, C).

    The segment in force at the end sets a channel's efficiency. Additive form: the fitted curve itself at average
    demand. Log form: ``L·(exp(b·hill) − 1)`` re-expressed as a Hill curve, with L the daily KPI without the channel
    over the last year and b the channel's log effect at saturation per period.
    """
    C = spec.x.shape[1]
    seg_ch = spec.seg[0]
    last = np.array([int(np.nonzero(seg_ch == c)[0][-1]) for c in range(C)])
    beta = np.array([s.beta[last] for s in sols]).reshape(len(sols), C)
    half = np.array([np.exp(s.theta[:, 1]) * spec.scale for s in sols]).reshape(len(sols), C)
    shape = np.array([np.exp(s.theta[:, 2]) for s in sols]).reshape(len(sols), C)
    if spec.form == "additive":
        return beta, half, shape
    recent = min(len(spec.y), int(round(365 / spec.days)))
    level = np.array([((p.fitted[:, None] - p.contrib)[-recent:] / spec.days).mean(axis=0) for p in preds])
    out = [log_curve_as_hill(level[:, c], beta[:, c] * spec.days, half[:, c], shape[:, c]) for c in range(C)]
    return tuple(np.column_stack([o[i] for o in out]) for i in range(3))


def _lift_report(spec: Spec, sol: Solution, draws: list[Solution], channels: list[str]) -> list[dict[str, Any]]:
    """Each lift test beside the calibrated model's own prediction of it (with a 90% interval from the draws)."""
    if spec.lift is None:
        return []
    prob = spec.problem()
    point = prob.lift_predictions(sol)
    dp = np.array([prob.lift_predictions(d) for d in draws]) if draws else np.zeros((0, len(point)))
    lt = spec.lift
    out = []
    for k, c in enumerate(lt.channel):
        lo, hi = interval(dp[:, k], float(point[k])) if len(dp) else (float(point[k]), float(point[k]))
        out.append({"channel": channels[int(c)], "start": lt.windows[k][0], "end": lt.windows[k][1],
                    "spend_change_per_day": float(lt.spend_change[k]), "lift": float(lt.lift[k]),
                    "se": float(lt.se[k]), "predicted": float(point[k]), "predicted_interval": [lo, hi]})
    return out


def build_artifact(f: Fitted, kpi_col: str, target_roas: float, seed: int,  # noqa: C901
                   platform_revenue: dict[str, float]) -> dict[str, Any]:
    """The JSON-serialisable artifact of a fit."""
    prep, spec, sol, pred, draws = f.prep, f.spec, f.sol, f.pred, f.draws
    warnings, notes, fixed = list(f.warnings), list(f.notes), f.fixed
    y = prep.y
    n, C = prep.spend.shape
    x = spec.x
    D = len(draws)
    dpreds = [predict(spec, d) for d in draws]
    dcontrib = np.stack([p.contrib.sum(axis=0) for p in dpreds]) if D else np.zeros((0, C))
    beta_p, half_p, shape_p = (v[0] for v in curve_params(spec, [sol], [pred]))
    dbeta, dhalf, dshape = curve_params(spec, draws, dpreds) if D else (np.zeros((0, C)),) * 3
    ddecay = np.array([d.theta[:, 0] for d in draws]).reshape(D, C)
    opt_p = optimal_spend(beta_p, half_p, shape_p, target_roas)
    recent = max(int(round(28 / prep.days)), 1)
    months = prep.dates.month.to_numpy()
    wdays = prep.dates.day_of_week.to_numpy()
    total_y = float(y.sum())
    contrib = pred.contrib
    channels: dict[str, Any] = {}
    for c, name in enumerate(prep.channels):
        spend_total = float(prep.spend[:, c].sum())
        cur = float(prep.spend[-recent:, c].sum() / (recent * prep.days))
        b, hf, k = float(beta_p[c]), float(half_p[c]), float(shape_p[c])
        mroas = float(b * hill_derivative(cur, hf, k))
        dm = hill_slope(np.full(D, cur), dbeta[:, c], dhalf[:, c], dshape[:, c]) if cur > 0 else np.full(D, mroas)
        dopt = optimal_spend(dbeta[:, c], dhalf[:, c], dshape[:, c], target_roas) if D else np.zeros(0)
        opt = float(opt_p[c])
        if name in fixed:
            opt, dopt = cur, np.full(D, cur)
        gain = lambda s, b=b, hf=hf, k=k: float(b * hill(s, hf, k) - target_roas * s)  # noqa: E731
        hi_spend = max(2.0 * cur, 1.25 * opt, 1.2 * float(np.percentile(x[:, c], 95)), hf)
        grid = np.linspace(0.0, hi_spend, 41)
        mean_curve = b * hill(grid, hf, k)
        if D:
            lo_c, hi_c = band(dbeta[:, c, None] * hill(grid[None, :], dhalf[:, c, None], dshape[:, c, None]),
                              mean_curve)
        else:
            lo_c = hi_c = mean_curve
        cc = contrib[:, c]
        stages = int(spec.stages[c])
        decay = float(sol.theta[c, 0])
        prt = platform_revenue.get(name)
        roas_iv = interval(dcontrib[:, c] / spend_total, cc.sum() / spend_total)
        channels[name] = {
            "spend_total": spend_total,
            "contribution": float(cc.sum()),
            "contribution_interval": interval(dcontrib[:, c], float(cc.sum())),
            "share": float(cc.sum() / total_y) if total_y else 0.0,
            "roas": {"mean": float(cc.sum() / spend_total), "low": roas_iv[0], "high": roas_iv[1]},
            "marginal_roas": mroas, "marginal_roas_interval": interval(dm, mroas),
            "current_daily_spend": cur,
            "optimal_daily_spend": opt, "optimal_daily_spend_interval": interval(dopt, opt),
            "opportunity_per_day": gain(opt) - gain(cur),
            "adstock": {"type": "geometric" if stages == 1 else "delayed", "decay": decay, "stages": stages,
                        "peak_lag": (stages - 1) * decay / max(1 - decay, 1e-9), "per": prep.granularity},
            "saturation": {"type": "hill", "half": hf, "shape": k},
            "beta": b,
            "params_draws": {"beta": dbeta[:, c].tolist(), "half": dhalf[:, c].tolist(),
                             "shape": dshape[:, c].tolist(), "decay": ddecay[:, c].tolist()},
            "curve": {"spend": grid.tolist(), "mean": mean_curve.tolist(), "low": lo_c.tolist(),
                      "high": hi_c.tolist()},
            "seasonality": {"month": _index(cc, prep.spend[:, c], months, list(range(1, 13))),
                            "weekday": (_index(cc, prep.spend[:, c], wdays, list(range(7))) if prep.days == 1
                                        else {str(i): None for i in range(7)})},
            "platform_roas": (float(prt) / spend_total if prt is not None and spend_total > 0 else None),
            "fixed_cost": name in fixed,
        }
        ch = channels[name]
        ks = np.nonzero(spec.seg[0] == c)[0]
        if len(ks) > 1 and sol.beta[ks[0]] > 0:
            ratio = float(sol.beta[ks[-1]] / sol.beta[ks[0]])
            dr = np.array([d.beta[ks[-1]] / d.beta[ks[0]] if d.beta[ks[0]] > 0 else np.nan for d in draws])
            ch["efficiency_change"] = {"ratio": ratio, "interval": interval(dr, ratio),
                                       "date": str(prep.dates[int(np.argmax(spec.seg[1][:, ks[-1]]))].date())}
        if hf > 5 * max(x[:, c].max(), 1e-9) or (D and np.percentile(dopt, HI_Q) > 3 * max(x[:, c].max(), 1e-9)):
            warnings.append(f"{name}: the data show no clear saturation within the observed spend range, so its "
                            "optimal spend is an extrapolation (see its interval)")
    for name, ch in channels.items():
        lo, hi = ch["roas"]["low"], ch["roas"]["high"]
        if hi > 0 and hi > WIDE_RATIO * max(lo, 1e-9):
            warnings.append(f"{name}: ROAS interval {lo:.2f}–{hi:.2f} is wide: the data cannot separate this "
                            "channel's effect well from the baseline and the other channels")
    for name in f.delayed:
        a = channels[name]["adstock"]
        notes.append(f"{name}: its effect builds up and peaks about {a['peak_lag']:.1f} {prep.granularity}s after "
                     "the spend (a delayed carry-over fits clearly better than an immediate one)")
    findings = efficiency_breaks(spec, sol, prep)
    lift_rows = _lift_report(spec, sol, draws, prep.channels)
    for r in lift_rows:
        notes.append(f"{r['channel']}: a lift test ({r['start']} to {r['end']}) measured {r['lift']:,.0f} ± "
                     f"{r['se']:,.0f}; the calibrated model predicts {r['predicted']:,.0f} for it")
    for b in findings:
        notes.append(b["sentence"])
    health = model_health(f, {nm: (ch["roas"]["mean"], ch["roas"]["low"], ch["roas"]["high"])
                              for nm, ch in channels.items()})
    fitted = pred.fitted
    r2 = float(1 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2))
    return {
        "version": ARTIFACT_VERSION, "kpi": kpi_col, "granularity": prep.granularity,
        "periods_per_year": 365 if prep.days == 1 else 52,
        "start": str(prep.dates[0].date()), "end": str(prep.dates[-1].date()), "n_obs": int(n),
        "target_roas": float(target_roas), "seed": int(seed),
        "kpi_form": spec.form,
        "form_selection": {"rolling_origin_mape": f.cv, "chosen": spec.form},
        "events": f.events,
        "channels": channels,
        "baseline": {"total": float(pred.baseline.sum()),
                     "share": float(pred.baseline.sum() / total_y) if total_y else 0.0},
        "baseline_terms": spec.bnames,
        "decomposition": {"dates": [str(d.date()) for d in prep.dates], "actual": y.tolist(),
                          "fitted": fitted.tolist(), "baseline": pred.baseline.tolist(),
                          "channels": {nm: pred.decomposition[:, c].tolist() for c, nm in enumerate(prep.channels)},
                          # per-period multiplier on every channel's curve (s_t^g; 1.0 = average demand)
                          "media_multiplier": (np.ones(n) if spec.mult is None else spec.mult).tolist()},
        "media_demand_elasticity": float(spec.demand_g),
        "efficiency_breaks": findings,
        "lift_tests": lift_rows,
        "health": health.to_dict(),
        "fit": {"r2": r2, "mape": _mape(y, fitted), "mape_holdout": f.mape_holdout,
                "holdout_periods": int(f.holdout_periods), "n_boot": int(D),
                "seconds": round(time.perf_counter() - f.started, 3)},
        "warnings": warnings,
        "notes": notes,
    }
