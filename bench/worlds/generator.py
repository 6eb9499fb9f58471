"""Benchmark worlds for a marketing mix model: random structure, known truth, deterministic from a seed.

Written independently of the model under test: it encodes its own assumptions about how media, baseline, holidays,
controls and noise produce revenue, so the model cannot have been tuned to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.worlds.kpi import FORMS, ChannelResponse, KpiModel, apply_noise, draw_controls, draw_noise
from bench.worlds.media import (
    CHANNELS,
    PATTERN_P,
    PATTERNS,
    ar1,
    correlate,
    draw_carryover,
    draw_saturation,
    draw_spend_shape,
)
from bench.worlds.timeline import (
    COUNTRIES,
    COUNTRY_P,
    draw_calendar,
    draw_events,
    draw_season,
    draw_trend,
    draw_weekday,
    events_table,
)
from core.serialize import plain

HOLIDAY_MODES = ["table", "flag", "none"]


@dataclass(eq=False)
class World:
    """One benchmark world: the data a user would have, what was drawn, and the truth."""

    seed: int
    name: str
    data: pd.DataFrame
    spend_cols: list[str]
    control_cols: list[str]
    external_factors: pd.DataFrame | None
    country: str
    granularity: str
    structure: dict
    truth: dict
    model: KpiModel = field(repr=False)

    def expected_kpi(self, spend: np.ndarray) -> np.ndarray:
        """Noise-free expected KPI per period for spend of shape (n_periods, n_channels) (or (..., n, C))."""
        return self.model(spend)


def _loguniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> np.ndarray | float:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _balanced(seed: int, salt: int, options: list[str]) -> str:
    """One of `options`, balanced over each block of len(options) consecutive seeds (random order within a block)."""
    k = len(options)
    return options[int(np.random.default_rng([salt, seed // k]).permutation(k)[seed % k])]


def make_world(seed: int) -> World:
    """Draw world `seed` (everything from np.random.default_rng(seed); granularity, KPI form and holiday mode are
    balanced over blocks of consecutive seeds, so any 6 consecutive seeds from a multiple of 6 hold each equally)."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    rng = np.random.default_rng(seed)
    granularity = _balanced(seed, 1, ["day", "week"])
    daily = granularity == "day"
    dpp = 1 if daily else 7
    cal = draw_calendar(rng, granularity)
    n = cal.n
    country = str(rng.choice(COUNTRIES, p=COUNTRY_P))
    form = _balanced(seed, 2, FORMS)
    log_trend, trend_info = draw_trend(rng, cal)
    log_season, season_info = draw_season(rng, cal)
    log_wd, wd_info = draw_weekday(rng, cal)
    ev = draw_events(rng, cal, country)
    hol_mode = _balanced(seed, 3, HOLIDAY_MODES)
    impact_mode = str(rng.choice(["given", "nan", "mixed"])) if hol_mode == "table" else None

    base_unit = cal.to_periods(np.exp(log_trend + log_season + log_wd + ev.log_effect))
    level_p = cal.to_periods(np.exp(log_trend))
    season_p = cal.to_periods(np.exp(log_season)) / dpp

    unobserved, u = None, np.zeros(n)
    if rng.uniform() < 0.2:
        sd = float(rng.uniform(0.04, 0.1))
        z_u = ar1(rng, n, 0.97 if daily else 0.8)
        u = sd * z_u
        unobserved = {"sd": sd, "confounds": None}

    # ---- media spend
    n_ch = int(rng.integers(2, 9))
    labels = [str(x) for x in rng.choice(CHANNELS, n_ch, replace=False)]
    cols = [f"{lab.lower()}_spend" for lab in labels]
    patterns = [str(x) for x in rng.choice(PATTERNS, n_ch, p=PATTERN_P)]
    weekday = np.asarray(cal.dates.day_of_week) if daily else None
    shapes, pat_info = {}, {}
    for c, kind in zip(cols, patterns, strict=True):
        shapes[c], pat_info[c] = draw_spend_shape(rng, kind, n, daily, season_p, base_unit, weekday)
    tiny = cols[int(rng.integers(n_ch))] if n_ch >= 3 and rng.uniform() < 0.2 else None
    shares = 0.03 + (1 - 0.03 * n_ch) * rng.dirichlet(np.full(n_ch, rng.uniform(0.7, 3.0)))
    if tiny is not None:
        i = cols.index(tiny)
        s_tiny = float(rng.uniform(0.01, 0.02))
        shares[i] = 0.0
        shares = shares / shares.sum() * (1 - s_tiny)
        shares[i] = s_tiny
    eligible = [c for c in cols if c != tiny]
    if unobserved is not None and rng.uniform() < 0.5:
        j = str(rng.choice(eligible))
        kappa = float(rng.uniform(0.2, 0.5))
        shapes[j] = shapes[j] * np.exp(kappa * z_u)
        shapes[j] /= shapes[j].mean()
        unobserved.update(confounds=j, spend_loading=kappa)
    pair = None
    followers = [c for c, k in zip(cols, patterns, strict=True)
                 if c != tiny and k in ("always_on", "seasonal", "demand")]
    if len(eligible) >= 2 and followers and rng.uniform() < 0.4:
        b = str(rng.choice(followers))
        a = str(rng.choice([c for c in eligible if c != b]))
        target = float(rng.uniform(0.6, 0.9))
        shapes[b], r, w = correlate(shapes[a], shapes[b], target)
        pair = {"channels": [a, b], "target_r": target, "r": r, "blend": w}
    roas_target = np.asarray(_loguniform(rng, 0.3, 8.0, n_ch))
    spend_per_day = n_ch * float(_loguniform(rng, 1500.0, 15000.0))
    total = spend_per_day * dpp * n
    x = np.column_stack([np.round(shares[i] * total / n * shapes[c], 2) for i, c in enumerate(cols)])
    spend_tot = x.sum(axis=0)

    # ---- controls and base
    ctrl_cols, ctrl_eff, ctrl_info = draw_controls(rng, n, daily, {c: x[:, i] for i, c in enumerate(cols)}, form)
    f = sum(ctrl_eff.values(), np.zeros(n))
    media_share = float(rng.uniform(0.055, 0.38))
    m_target = float((roas_target * spend_tot).sum())
    scale_ctrl = 1.0
    if form == "additive":
        while True:
            full = base_unit + level_p * (scale_ctrl * f + u)
            if full.min() >= 0.2 * np.median(base_unit):
                break
            scale_ctrl *= 0.7
    else:
        full = base_unit * np.exp(f + u)
    level = m_target * (1 - media_share) / media_share / full.sum()
    base = level * full
    for v in ctrl_info.values():
        v["effect_scale"] = scale_ctrl

    # ---- responses
    responses, ch_info = [], {}
    for i, c in enumerate(cols):
        carry = draw_carryover(rng, granularity)
        sat = draw_saturation(rng, float(x[:, i].mean()))
        order = "saturation_first" if rng.uniform() < 0.15 else "adstock_first"
        responses.append(ChannelResponse(carry, sat["kind"], sat["half_sat"], sat["shape"], 1.0, np.ones(n), order))
        ch_info[c] = {"label": labels[i], "pattern": pat_info[c], "adstock": carry.info, "saturation": sat,
                      "order": order, "tiny": c == tiny, "roas_target": float(roas_target[i])}
    brk = None
    if rng.uniform() < 0.2:
        frac = float(rng.uniform(0.3, 0.75))
        tb = int(frac * n)
        ok = [c for c in eligible if x[:tb, cols.index(c)].sum() > 0 and x[tb:, cols.index(c)].sum() > 0]
        if ok:
            c = str(rng.choice(ok))
            factor = float(rng.uniform(0.5, 0.8) if rng.uniform() < 0.5 else rng.uniform(1.2, 1.5))
            responses[cols.index(c)].eff[tb:] = factor
            brk = {"channel": c, "period": tb, "date": str(cal.dates[tb].date()), "factor": factor}
    drift = None
    if rng.uniform() < 0.1:
        c = str(rng.choice([c for c in cols if brk is None or c != brk["channel"]]))
        d = float(rng.choice([-1, 1])) * float(rng.uniform(0.15, 0.35))
        responses[cols.index(c)].eff[:] = 1.0 + d * np.linspace(-1.0, 1.0, n)
        drift = {"channel": c, "from": 1.0 - d, "to": 1.0 + d}

    model = KpiModel(form, base, responses)
    model.calibrate(x, roas_target * spend_tot)
    for i, c in enumerate(cols):
        ch_info[c]["beta"] = responses[i].beta

    # ---- truth
    expected = model(x)
    contrib = model.contributions(x)
    bumped = np.repeat(x[None], n_ch, axis=0)
    for i in range(n_ch):
        bumped[i, :, i] *= 1.01
    mroas = (model(bumped).sum(axis=1) - expected.sum()) / (0.01 * spend_tot)
    channels = {c: {"roas": float(contrib[i] / spend_tot[i]), "contribution": float(contrib[i]),
                    "spend_total": float(spend_tot[i]), "share_of_spend": float(spend_tot[i] / spend_tot.sum()),
                    "mroas": float(mroas[i])} for i, c in enumerate(cols)}

    noise = draw_noise(rng)
    revenue, n_floor = apply_noise(rng, expected, noise)

    # ---- what the user sees
    data = pd.DataFrame({"date": np.asarray(cal.dates, dtype="datetime64[ns]"), "revenue": np.round(revenue, 2)})
    for i, c in enumerate(cols):
        data[c] = x[:, i]
    control_cols = list(ctrl_cols)
    for k, v in ctrl_cols.items():
        data[k] = v
    external = None
    if hol_mode == "flag":
        data["is_holiday"] = (cal.to_periods(ev.holiday_flag) > 0).astype(int)
        control_cols.append("is_holiday")
        if ev.promo_flag.any():
            data["promo"] = (cal.to_periods(ev.promo_flag) > 0).astype(int)
            control_cols.append("promo")
    elif hol_mode == "table":
        external = events_table(ev, cal, impact_mode, rng)

    notes = ["carry-over starts at the first period: no spend before the history is assumed",
             f"spend and revenue are per {'day' if daily else 'week (Monday-dated, 7 days)'}"]
    if hol_mode == "none":
        notes.append("holidays/events affect revenue but are not given")
    if brk:
        notes.append(f"unrecorded break: {brk['channel']} effectiveness x{brk['factor']:.2f} from {brk['date']}")
    if drift:
        notes.append(f"unrecorded drift: {drift['channel']} effectiveness {drift['from']:.2f} -> {drift['to']:.2f}")
    if unobserved:
        notes.append(f"unobserved demand driver (sd {unobserved['sd']:.3f} in log revenue)"
                     + (f", {unobserved['confounds']} spend follows it" if unobserved["confounds"] else ""))
    for i, c in enumerate(cols):
        for weeks in (52, 13):
            if x[n - min(n, 364 // dpp * weeks // 52):, i].sum() == 0:
                notes.append(f"{c} has no spend in the last {weeks} weeks")
                break
        if x[0, i] == 0:
            notes.append(f"{c} starts with zero spend ({int(np.argmax(x[:, i] > 0))} periods before its first spend)")
    if n_floor:
        notes.append(f"{n_floor} periods floored at 5% of expected revenue")
    media_total = float((expected - model(np.zeros_like(x))).sum())
    truth = {"channels": channels, "media_share": media_total / float(expected.sum()),
             "sum_contribution_share": float(contrib.sum() / expected.sum()),
             "expected_revenue_total": float(expected.sum()), "notes": notes}

    structure = {
        "kpi_form": form, "granularity": granularity, "n_periods": n, "years": cal.years,
        "start": str(cal.dates[0].date()), "end": str(cal.dates[-1].date()), "country": country,
        "n_channels": n_ch,
        "baseline": {"level_per_day": float(level * full.sum() / (n * dpp)), "trend": trend_info,
                     "season": season_info, "weekday": wd_info},
        "holidays": {"mode": hol_mode, "impact_multiplier": impact_mode} | ev.info,
        "channels": ch_info, "correlated_pair": pair, "tiny_channel": tiny, "break": brk, "drift": drift,
        "controls": ctrl_info, "unobserved": unobserved, "noise": noise | {"n_floored": n_floor},
        "media_share_target": media_share, "spend_per_day": spend_per_day,
    }
    name = f"w{seed:03d} {'daily' if daily else 'weekly'} {cal.years:.1f}y {n_ch}ch {form}"
    return World(seed, name, data, cols, control_cols, external, country, granularity, plain(structure),
                 plain(truth), model)


def all_worlds(n: int = 120, start_seed: int = 0) -> list[World]:
    """Worlds for seeds start_seed .. start_seed + n - 1."""
    return [make_world(s) for s in range(start_seed, start_seed + n)]


def structure_kinds(world: World) -> set[str]:
    """The structural kinds a world exhibits (for coverage counts and QUICK_SEEDS)."""
    s = world.structure
    k = {f"granularity:{s['granularity']}", f"kpi:{s['kpi_form']}", f"holidays:{s['holidays']['mode']}",
         f"noise:{s['noise']['kind']}", f"country:{s['country']}", f"season:{s['baseline']['season']['kind']}",
         f"trend:{s['baseline']['trend']['kind']}", f"controls:{len(s['controls'])}"}
    for ch in s["channels"].values():
        k |= {f"adstock:{ch['adstock']['kind']}", f"saturation:{ch['saturation']['kind']}",
              f"spend:{ch['pattern']['kind']}", f"order:{ch['order']}"}
        if ch["adstock"]["peak_lag"] >= 1:
            k.add("delayed_peak")
        if ch["pattern"].get("launch_period", 0) > 0:
            k.add("spend:launch")
    k |= {f"control:{c}" for c in s["controls"]}
    if any(v["correlated_with"] for v in s["controls"].values()):
        k.add("control_correlated_with_spend")
    for flag, key in (("correlated_pair", "correlated_pair"), ("tiny_channel", "tiny_channel"), ("break", "break"),
                      ("drift", "drift"), ("unobserved", "unobserved")):
        if s[key]:
            k.add(flag)
    if s["unobserved"] and s["unobserved"]["confounds"]:
        k.add("unobserved_confounds_spend")
    if s["noise"]["ar1"] > 0:
        k.add("noise:ar1")
    if s["holidays"]["bfcm"]:
        k.add("bfcm")
    if s["holidays"]["n_promotions"]:
        k.add("promotions")
    if s["holidays"]["n_with_window"]:
        k.add("holiday_windows")
    k.add("channels:2-3" if s["n_channels"] <= 3 else "channels:7-8" if s["n_channels"] >= 7 else "channels:4-6")
    return k


# 24 seeds that together show every kind structure_kinds() finds in the 120 default worlds, each granularity x KPI
# form 4 times, each holiday mode 8 times, 5 breaks (greedy cover over the 120 default worlds).
QUICK_SEEDS: list[int] = [0, 1, 2, 3, 4, 5, 7, 9, 12, 17, 20, 21, 34, 36, 40, 42, 45, 49, 50, 51, 76, 81, 94, 108]
