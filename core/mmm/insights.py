"""Plain-language insights computed from a fitted model artifact (never written by hand).

Each insight is ``{"title", "text", "kind", "channel", "value"}`` where ``kind`` is one of ``warning`` (money being
wasted), ``opportunity`` (money left on the table), ``info``; ``value`` is the $/day at stake (for ranking).
"""

from __future__ import annotations

from typing import Any

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def money(x: float) -> str:
    """$4.7M / $312K / $4,800 — the way business readers write money."""
    sign = "-" if x < 0 else ""
    x = abs(float(x))
    if x >= 1e6:
        return f"{sign}${x / 1e6:.1f}M"
    if x >= 1e4:
        return f"{sign}${x / 1e3:.0f}K"
    return f"{sign}${x:,.0f}"


def _round_spend(x: float) -> float:
    """Round a recommended spend to two significant figures, as a person would say it."""
    return float(f"{x:.2g}") if x > 0 else 0.0


def channel_insights(name: str, ch: dict[str, Any], target: float = 1.0) -> list[dict[str, Any]]:
    """Where a channel stands on its curve: past the optimum, below it, or about right."""
    out: list[dict[str, Any]] = []
    cur = float(ch.get("current_daily_spend") or 0.0)
    opt = float(ch.get("optimal_daily_spend") or 0.0)
    mroas = ch.get("marginal_roas")
    opp = float(ch.get("opportunity_per_day") or 0.0)
    if cur <= 0 or mroas is None or ch.get("fixed_cost"):
        return out
    lo, hi = (ch.get("optimal_daily_spend_interval") or [opt, opt])[:2]
    if cur > opt * 1.1 and cur > hi:
        out.append({
            "title": f"{name} is past its optimal point",
            "text": (f"{name} is past its optimal point: marginal ROAS {mroas:.1f}x at {money(cur)}/day; "
                     f"about {money(_round_spend(opt))}/day is optimal (each extra dollar returns "
                     f"${mroas:.2f} of revenue)."),
            "kind": "warning", "channel": name, "value": opp,
        })
    elif cur < opt * 0.9 and cur < lo:
        out.append({
            "title": f"{name} has room to grow",
            "text": (f"{name} is below its optimal point: marginal ROAS {mroas:.1f}x at {money(cur)}/day; "
                     f"spend up to about {money(_round_spend(opt))}/day returns more than it costs "
                     f"(target {target:.1f}x)."),
            "kind": "opportunity", "channel": name, "value": opp,
        })
    return out


def model_insights(artifact: dict[str, Any], reallocation: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Insights from the artifact, ranked by money at stake. ``reallocation`` is an optimizer result, if any."""
    chans: dict[str, dict[str, Any]] = artifact.get("channels", {})
    target = float(artifact.get("target_roas", 1.0))
    out: list[dict[str, Any]] = []
    for name, ch in chans.items():
        out.extend(channel_insights(name, ch, target))
    out.sort(key=lambda i: -abs(i["value"]))

    if reallocation:
        proj = reallocation.get("projection", {})
        mean, low, high = (proj.get(k) for k in ("lift_per_year", "lift_per_year_low", "lift_per_year_high"))
        if mean is not None and mean > 0:
            moves = sorted(reallocation.get("channels", []), key=lambda r: -abs(r.get("change", 0.0)))[:2]
            parts = [f"{r['channel']} {'+' if r['change'] > 0 else '-'}{money(abs(r['change']))}/day" for r in moves
                     if abs(r.get("change", 0.0)) >= 1.0]
            rng = f" (90% interval {money(low)} to {money(high)})" if low is not None and high is not None else ""
            out.insert(0, {
                "title": "Same budget, more revenue",
                "text": (f"Reallocating the same budget could add about {money(mean)}/year in revenue{rng}"
                         + (f", mainly {', '.join(parts)}." if parts else ".")),
                "kind": "opportunity", "channel": None, "value": mean / 365.0,
            })

    with_roas = [(n, c) for n, c in chans.items() if c.get("roas", {}).get("mean") is not None and c.get("spend_total")]
    if with_roas:
        best_name, best = max(with_roas, key=lambda t: t[1]["roas"]["mean"])
        r = best["roas"]
        out.append({
            "title": "Highest incremental return",
            "text": (f"{best_name} returns the most per dollar: {r['mean']:.1f}x incremental ROAS "
                     f"(90% interval {r['low']:.1f}x to {r['high']:.1f}x)."),
            "kind": "info", "channel": best_name, "value": 0.0,
        })
        gaps = [(n, c["platform_roas"] / c["roas"]["mean"]) for n, c in with_roas
                if c.get("platform_roas") and c["roas"]["mean"] > 0]
        if gaps:
            name, ratio = max(gaps, key=lambda t: t[1])
            c = chans[name]
            if ratio > 1.25 and c["platform_roas"] > c["roas"]["high"]:
                out.append({
                    "title": f"{name} over-reports its impact",
                    "text": (f"{name} reports {c['platform_roas']:.1f}x ROAS in its own tool, but its incremental "
                             f"ROAS is {c['roas']['mean']:.1f}x: about {1 - 1 / ratio:.0%} of the revenue it claims "
                             "would have happened anyway."),
                    "kind": "warning", "channel": name, "value": 0.0,
                })

    for name, ch in chans.items():
        season = ch.get("seasonality") or {}
        month = {k: v for k, v in (season.get("month") or {}).items() if v is not None}
        if month:
            best_m, idx = max(month.items(), key=lambda t: t[1])
            if idx >= 1.15:
                out.append({
                    "title": f"When {name} performs best",
                    "text": (f"{name} performs best in {MONTHS[int(best_m) - 1]}: {idx - 1:.0%} more revenue per "
                             "dollar than its average month."),
                    "kind": "info", "channel": name, "value": 0.0,
                })
        weekday = {k: v for k, v in (season.get("weekday") or {}).items() if v is not None}  # none for weekly data
        if weekday:
            ranked = sorted(weekday.items(), key=lambda t: -t[1])
            if ranked[0][1] >= 1.1:
                days = [WEEKDAYS[int(d)] for d, v in ranked[:2] if v >= 1.1]
                out.append({
                    "title": f"{name}'s best days",
                    "text": (f"{name} works best on {' and '.join(days)} "
                             f"({ranked[0][1] - 1:.0%} above its average day)."),
                    "kind": "info", "channel": name, "value": 0.0,
                })

    for b in artifact.get("efficiency_breaks") or []:
        out.append({
            "title": f"{b['channel']} changed around {b['date']}",
            "text": (f"{b['channel']} brings {abs(b['ratio'] - 1):.0%} {'less' if b['ratio'] < 1 else 'more'} revenue "
                     f"per dollar since about {b['date']}, and nothing in the data explains it: check tracking, "
                     "creative or pricing there."),
            "kind": "warning", "channel": b["channel"], "value": 0.0,
        })
    for name, ch in chans.items():
        ad = ch.get("adstock") or {}
        if ad.get("type") == "delayed" and ad.get("peak_lag", 0) >= 1:
            unit = "weeks" if ad.get("per") == "week" else "days"
            out.append({
                "title": f"{name} works with a delay",
                "text": (f"{name}'s effect peaks about {ad['peak_lag']:.0f} {unit} after the spend: judge a change "
                         "in its budget only after that."),
                "kind": "info", "channel": name, "value": 0.0,
            })

    fit = artifact.get("fit") or {}
    if fit.get("r2") is not None:
        hold = fit.get("mape_holdout")
        n_hold = fit.get("holdout_periods")
        hold_txt = f"; on the last {n_hold} held-out periods its error was {hold:.1%}" if hold else ""
        out.append({
            "title": "How much to trust the model",
            "text": f"The model explains {fit['r2']:.0%} of the variation in revenue (error {fit.get('mape', 0):.1%})"
                    f"{hold_txt}.",
            "kind": "info", "channel": None, "value": 0.0,
        })
    return out
