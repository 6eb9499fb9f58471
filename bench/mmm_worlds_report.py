"""Summaries and markdown tables of ``bench/mmm_worlds.py`` runs (the rows it saves under bench/out/worlds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "bench" / "out" / "worlds"
BIG = 0.03  # channels whose true incremental revenue is at least 3% of all revenue: identifiable in principle


def summary(rows: list[dict]) -> dict:
    """Median/p90 absolute ROAS error over channels, pooled coverage, width, plan shares."""
    ok = [r for r in rows if "error" not in r]
    errs = np.array([abs(ch["err"]) for r in ok for ch in r["channels"].values() if ch["err"] is not None])
    cov = np.array([ch["covered"] for r in ok for ch in r["channels"].values()])
    width = np.array([ch["width"] for r in ok for ch in r["channels"].values() if ch["width"] is not None])
    world_err = np.array([np.mean([abs(ch["err"]) for ch in r["channels"].values() if ch["err"] is not None])
                          for r in ok])
    out = {"worlds": len(rows), "failed": len(rows) - len(ok), "channels": int(len(errs)),
           "within_50": float(np.mean(errs <= 0.5)), "zero": float(np.mean([ch["mean"] <= 1e-9 for r in ok
                                                                          for ch in r["channels"].values()])),
           "median_err": float(np.median(errs)), "p90_err": float(np.percentile(errs, 90)),
           "mean_world_err_median": float(np.median(world_err)), "coverage": float(cov.mean()),
           "median_width": float(np.median(width)), "cpu_median": float(np.median([r["cpu"] for r in ok]))}
    big = [ch for r in ok for ch in r["channels"].values() if ch["contrib_share"] >= BIG and ch["err"] is not None]
    if big:
        e = np.abs([ch["err"] for ch in big])
        out.update({"big_channels": len(big), "big_median_err": float(np.median(e)),
                    "big_p90_err": float(np.percentile(e, 90)),
                    "big_coverage": float(np.mean([ch["covered"] for ch in big]))})
    keys = sorted({k for r in ok for k in r if k.startswith("plan")}, key=lambda k: (k not in ("plan", "plan_50"), k))
    for key in keys:
        sh = np.array([r[key]["share"] for r in ok if "share" in r.get(key, {}) and r[key]["share"] is not None])
        if len(sh):
            out[f"{key}_share_median"] = float(np.median(sh))
            out[f"{key}_share_p10"] = float(np.percentile(sh, 10))
            out[f"{key}_losing"] = int((sh < 0).sum())
            out[f"{key}_losing_share"] = float((sh < 0).mean())
            out[f"{key}_n"] = int(len(sh))
            out[f"{key}_moved_median"] = float(np.median([r[key]["moved"] for r in ok if "moved" in r[key]]))
    out.update(hold_summary(ok))
    return out


def hold_summary(ok: list[dict], key: str = "plan") -> dict:
    """How often the default plan holds a channel for a lift test, and whether the held channels are the ones the
    fit got wrong: their |ROAS error| and interval against the other channels with ≥3% of revenue."""
    with_tests = [r for r in ok if r.get(key, {}).get("tests")]
    held = [(r, c) for r in ok for c in r.get(key, {}).get("held", [])]
    if not any("tests" in r.get(key, {}) for r in ok):
        return {}
    held_set = {(r["seed"], c) for r, c in held}
    tested = {(r["seed"], t["channel"]) for r in with_tests for t in r[key]["tests"]}

    def errs(pairs):
        return np.array([abs(r["channels"][c]["err"]) for r, c in pairs if r["channels"][c]["err"] is not None])

    others = [(r, c) for r in ok for c, ch in r["channels"].items()
              if (r["seed"], c) not in held_set and ch["contrib_share"] >= BIG]
    e_held, e_other = errs(held), errs(others)
    out = {"worlds_with_tests": len(with_tests), "tests": len(tested),
           "tests_by_status": {s: sum(t["status"] == s for r in with_tests for t in r[key]["tests"])
                               for s in ("weak", "unidentified")},
           "worlds_held": len({r["seed"] for r, _ in held}), "held_channels": len(held)}
    if len(e_held):
        out.update({
            "held_median_err": float(np.median(e_held)), "held_p90_err": float(np.percentile(e_held, 90)),
            "held_err_over_50": float(np.mean(e_held > 0.5)),
            "held_big": int(sum(r["channels"][c]["contrib_share"] >= BIG for r, c in held)),
            "held_big_median_err": float(np.median(errs([(r, c) for r, c in held
                                                          if r["channels"][c]["contrib_share"] >= BIG]))),
            "held_covered": float(np.mean([r["channels"][c]["covered"] for r, c in held])),
            "held_median_width": float(np.median([r["channels"][c]["width"] for r, c in held
                                                  if r["channels"][c]["width"] is not None])),
            "held_median_spend_share": float(np.median([r["channels"][c]["spend_share"] for r, c in held])),
            "other_big_median_err": float(np.median(e_other)) if len(e_other) else None,
            "other_big_err_over_50": float(np.mean(e_other > 0.5)) if len(e_other) else None})
    return out


def table(runs: list[tuple[str, str]]) -> str:
    """A markdown table of saved runs' summaries: ``runs`` = [(file stem under bench/out/worlds, label)]."""
    head = ("| run | worlds | median \\|ROAS error\\| | p90 | within ±50% / at zero | ≥3% channels: median / p90 | "
            "coverage (all / ≥3%) | "
            "median interval width ÷ truth | default plan: median share of true uplift / losing | ±50% plan | "
            "CPU per fit (median) |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for stem, label in runs:
        s = summary(json.loads((OUT / f"{stem}.json").read_text())["rows"])
        lines.append(
            f"| {label} | {s['worlds']} | {s['median_err']:.0%} | {s['p90_err']:.0%} | {s['within_50']:.0%} / "
            f"{s['zero']:.0%} | {s['big_median_err']:.0%} / "
            f"{s['big_p90_err']:.0%} | {s['coverage']:.0%} / {s['big_coverage']:.0%} | {s['median_width']:.1f} | "
            f"{s['plan_share_median']:+.0%} / {s['plan_losing']} of {s['plan_n']} | "
            f"{s['plan_50_share_median']:+.0%} / {s['plan_50_losing']} of {s['plan_50_n']} | {s['cpu_median']:.1f} s |")
    return "\n".join(lines)


def plan_table(runs: list[tuple[str, str]]) -> str:
    """A markdown table of saved runs' plans: ``runs`` = [(stem[:variant], label)]; the variant (as given to
    ``--variant``, e.g. ``stem:w4``) picks ``plan_w4`` and ``plan_w4_50`` instead of the default plans."""
    head = ("| run | default plan: losing revenue | median / p10 share of true uplift | mean | worlds it moves | "
            "worst loss, % of revenue | ±50% plan: losing | median / p10 | mean | channels held for a test "
            "(worlds) |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for spec, label in runs:
        stem, _, var = spec.partition(":")
        rows = [r for r in json.loads((OUT / f"{stem}.json").read_text())["rows"] if "error" not in r]
        cells = []
        for key in ((f"plan_{var}", f"plan_{var}_50") if var else ("plan", "plan_50")):
            ps = [r[key] for r in rows if "share" in r.get(key, {})]
            sh = np.array([p["share"] for p in ps if p["share"] is not None])
            if not len(sh):  # a variant scored without bounds only
                cells.append(("–",) * 5)
                continue
            lose = int((sh < 0).sum())
            cells.append((f"{lose} of {len(sh)} ({lose / len(sh):.1%})",
                          f"{np.median(sh):+.0%} / {np.percentile(sh, 10):+.0%}", f"{sh.mean():+.0%}",
                          str(sum(p["moved"] > 0.005 for p in ps)),
                          f"{min(p['gained'] / p['base'] for p in ps):+.1%}"))
        held = [r[f"plan_{var}" if var else "plan"].get("held") for r in rows]
        held_txt = (f"{sum(map(len, held))} ({sum(bool(h) for h in held)})" if all(h is not None for h in held)
                    else "–")
        a, b = cells
        lines.append(f"| {label} | {a[0]} | {a[1]} | {a[2]} | {a[3]} | {a[4]} | {b[0]} | {b[1]} | {b[2]} | "
                     f"{held_txt} |")
    return "\n".join(lines)
