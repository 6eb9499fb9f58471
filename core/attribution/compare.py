"""Run every attribution model on the same paths, check that credits add up, and describe each model.

``run_attribution`` returns ``{"models": {model: {channel: {"conversions", "revenue", "share"}}}, "totals": {...},
"descriptions": {model: text}, "diagnostics": {...}, "channels": [...]}`` — the shape the API and CLI serve.
``share`` is the channel's share of conversion credit under that model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from core.attribution import heuristic
from core.attribution.causal import fit_causal
from core.attribution.confounding import causal_diagnostics, confounding_check
from core.attribution.incremental import incremental
from core.attribution.journeys import PathSet, _is_direct
from core.attribution.markov import markov
from core.attribution.shapley import shapley

__all__ = ["MODELS", "DEFAULT_MODELS", "RECOMMENDED", "run_attribution", "describe", "check_sums", "parse_models",
           "attribute", "detect_format"]

MODELS: tuple[str, ...] = (
    "first_click",
    "last_click",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
    "markov",
    "shapley",
    "incremental",
    "causal",
)
DEFAULT_MODELS = MODELS
RECOMMENDED = "causal"  # when the journeys carry timestamps; "incremental" on aggregated paths
LABELS = {
    "first_click": "First click",
    "last_click": "Last click",
    "last_non_direct": "Last non-direct",
    "linear": "Linear",
    "time_decay": "Time decay",
    "position_based": "Position-based",
    "markov": "Markov chain",
    "shapley": "Shapley",
    "incremental": "Incremental lift",
    "causal": "Causal journey model",
}
SUM_TOLERANCE = 1e-9


def parse_models(models: str | Iterable[str] | None) -> list[str]:
    """Model names from a comma list or iterable; unknown names raise ``ValueError`` listing the known ones."""
    if models is None or models == "" or models == []:
        return list(DEFAULT_MODELS)
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else [str(m).strip() for m in models]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown attribution model(s): {', '.join(unknown)} (known: {', '.join(MODELS)})")
    return list(dict.fromkeys(names))


def describe(model: str, *, half_life_days: float = 7.0, first: float = 0.4, last: float = 0.4,
             markov_order: int = 1, has_timestamps: bool = True) -> str:
    """A plain-language description of a model with the parameters in use.

    The lookback window applies to every model alike and is reported once, in ``run_attribution``'s ``notes``.
    """
    mid = 1 - first - last
    two_first = first / (first + last) if first + last else 0.5
    step = "" if has_timestamps else " (these paths have no timestamps, so each step counts as one day)"
    texts = {
        "first_click": "Gives each sale entirely to the channel that first brought the customer in. Good for "
        "seeing which channels start journeys; ignores everything that happened afterwards.",
        "last_click": "Gives each sale entirely to the last channel touched before buying — what most ad "
        "platforms and web analytics report. It overstates channels that close sales (email, affiliates, direct "
        "visits) and understates those that create demand.",
        "last_non_direct": "Like last click, but a direct visit (typing the address) is skipped in favour of the "
        "marketing touch before it, unless the customer only ever came direct.",
        "linear": "Splits each sale equally across every touch in the journey; a channel touched twice gets two "
        "shares.",
        "time_decay": f"Splits each sale across the touches, giving more to recent ones: a touch "
        f"{half_life_days:g} days before the purchase counts half as much as one on the day of purchase{step}.",
        "position_based": f"U-shaped: {first:.0%} of each sale to the first touch, {last:.0%} to the last and the "
        f"remaining {mid:.0%} shared by the touches in between (a single touch gets all of it, two touches split "
        f"it {two_first:.0%}/{1 - two_first:.0%}).",
        "markov": f"Data-driven: learns how customers move between channels (order {markov_order}: the next step "
        f"depends on the last {markov_order} channel{'s' if markov_order > 1 else ''}) and credits each channel "
        "by how many conversions would be lost if it were removed from every journey (removal effect, computed "
        "exactly from the transition probabilities).",
        "shapley": "Data-driven, game theory: treats channels as team members and gives each its average extra "
        "conversions when added to every possible combination of the other channels. Uses the simplified "
        "Shapley value of Zhao et al. (2018): a combination of channels is worth the conversions of journeys "
        "that touched only channels in it (the order of touches is ignored), computed exactly over all "
        "combinations.",
        "incremental": "Data-driven, causal reading: estimates from converting and non-converting journeys how "
        "much each extra touch of a channel raises the chance to buy (a per-touch lift fitted by maximum "
        "likelihood on top of a baseline chance), then credits each channel with the sales that would be lost "
        "without its touches. It assumes touches act independently and that who gets touched does not depend on "
        "how likely they already were to buy.",
        "causal": "Data-driven, causal: like incremental lift, but a touch's effect may fade with its age, repeated "
        "touches of one channel may add less each time, and what the person already showed before (direct visits, "
        "brand searches, prior orders, earlier sessions) is held fixed, so that a channel that merely reaches people "
        "who were going to buy anyway is not credited for their purchases. Which of these assumptions the data "
        "support is chosen on journeys held out of the fit. Direct visits, brand and organic search count as "
        "signs of intent, not as causes, and get no credit.",
    }
    return texts[model]


def check_sums(credits: dict[str, tuple[np.ndarray, np.ndarray]], total_conv: float, total_rev: float,
               tol: float = SUM_TOLERANCE) -> None:
    """Every model's credits must add up to the total conversions and revenue (relative tolerance ``tol``)."""
    for model, (conv, rev) in credits.items():
        for what, got, want in (("conversions", conv.sum(), total_conv), ("revenue", rev.sum(), total_rev)):
            if abs(got - want) > tol * max(abs(want), 1.0):
                raise RuntimeError(f"{model} credits {what} {got!r} but the journeys hold {want!r}")


def run_attribution(
    ps: PathSet,
    models: Sequence[str] | str | None = None,
    *,
    half_life_days: float = 7.0,
    position_weights: tuple[float, float] = (0.4, 0.4),
    markov_order: int = 1,
    lookback_days: float | None = 30.0,
) -> dict:
    """Run the requested models on one path set and return credits, totals, descriptions and diagnostics."""
    names = parse_models(models)
    if ps.total_conversions <= 0:
        raise ValueError("the journeys contain no conversions to attribute")
    skipped = []
    if "causal" in names and ps.touches is None:
        if models is not None and models != "" and models != []:
            raise ValueError("the causal journey model needs journeys with timestamps (touch rows), not paths")
        names.remove("causal")
        skipped.append("The causal journey model needs journeys with timestamps (touch rows); paths carry none.")
    first, last = position_weights
    credits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    diagnostics: dict[str, dict] = {}
    for name in names:
        if name == "markov":
            conv, rev, diag = markov(ps, order=markov_order)
            diagnostics[name] = {
                "order": markov_order, "states": diag["states"],
                "conversion_probability": diag["conversion_probability"],
                "removal_effects": dict(zip(ps.channels, map(float, diag["removal_conversions"]), strict=True)),
            }
            credits[name] = (conv, rev)
        elif name == "incremental":
            conv, rev, diag = incremental(ps)
            diagnostics[name] = {
                "base_rate": diag["base_rate"], "converged": diag["converged"],
                "lifts": dict(zip(ps.channels, map(float, diag["lifts"]), strict=True)),
                "incremental_conversions": dict(zip(ps.channels, map(float, diag["incremental_conversions"]),
                                                    strict=True)),
            }
            credits[name] = (conv, rev)
        elif name == "causal":
            fit = fit_causal(ps.touches, lookback_days)
            shares = fit.shares
            credits[name] = (ps.total_conversions * shares, ps.total_revenue * shares)
            diagnostics[name] = causal_diagnostics(fit, confounding_check(ps.touches, fit))
        elif name == "shapley":
            credits[name] = shapley(ps)
        elif name == "time_decay":
            credits[name] = heuristic.time_decay(ps, half_life_days)
        elif name == "position_based":
            credits[name] = heuristic.position_based(ps, first, last)
        else:
            credits[name] = getattr(heuristic, name)(ps)
    total_conv, total_rev = ps.total_conversions, ps.total_revenue
    check_sums(credits, total_conv, total_rev)
    out_models = {}
    for name, (conv, rev) in credits.items():
        out_models[name] = {
            ch: {"conversions": float(conv[i]), "revenue": float(rev[i]), "share": float(conv[i] / total_conv)}
            for i, ch in enumerate(ps.channels)
        }
    return {
        "models": out_models,
        "channels": list(ps.channels),
        "labels": {m: LABELS[m] for m in names},
        "available": dict(LABELS),  # every model this engine offers, for pickers
        "totals": {
            "conversions": total_conv,
            "revenue": total_rev,
            "journeys": int(ps.journeys),
            "paths": len(ps.paths),
            "channels": len(ps.channels),
            "unattributed_conversions": float(ps.dropped_conversions),
            "dropped_touches": int(ps.dropped_touches),
        },
        "descriptions": {
            m: describe(m, half_life_days=half_life_days, first=first, last=last, markov_order=markov_order,
                        has_timestamps=ps.has_timestamps)
            for m in names
        },
        "diagnostics": diagnostics,
        "params": {"half_life_days": half_life_days, "position_weights": [first, last], "markov_order": markov_order,
                   "lookback_days": lookback_days},
        "direct_channels": [c for c in ps.channels if _is_direct(c)],
        "notes": _notes(ps, lookback_days) + skipped,
        "recommended": RECOMMENDED if RECOMMENDED in names else ("incremental" if "incremental" in names else None),
    }


def _notes(ps: PathSet, lookback_days: float | None) -> list[str]:
    """Plain-language notes on what was counted (lookback window, filtered touches, unattributed conversions)."""
    notes = []
    if ps.has_timestamps:
        notes.append(f"Only touches in the {lookback_days:g} days before each purchase (or before the last visit "
                     "of journeys without a purchase) count." if lookback_days is not None
                     else "Every touch before the purchase counts (no lookback limit).")
    else:
        notes.append("The paths carry no timestamps: no lookback window applies.")
    if ps.dropped_conversions:
        notes.append(f"{ps.dropped_conversions:,.0f} conversions had no touch left after the filters and are not "
                     "attributed.")
    return notes


def detect_format(df: pd.DataFrame) -> str:
    """``journeys`` (long touch rows) or ``paths`` (aggregated) from the columns; ``ValueError`` if neither."""
    cols = {str(c).strip().lower() for c in df.columns}
    if {"journey_id", "channel"} <= cols:
        return "journeys"
    if "path" in cols:
        return "paths"
    raise ValueError(
        "cannot tell the file's format: journeys need journey_id, timestamp, channel, converted, revenue; paths "
        f"need path, conversions (columns found: {', '.join(map(str, df.columns))})"
    )


def attribute(
    df: pd.DataFrame,
    fmt: str = "auto",
    models: Sequence[str] | str | None = None,
    *,
    lookback_days: float | None = 30.0,
    interactions: Iterable[str] | None = None,
    half_life_days: float = 7.0,
    position_weights: tuple[float, float] = (0.4, 0.4),
    markov_order: int = 1,
) -> dict:
    """Validate a journeys or paths table, aggregate it and run the models (one call for the CLI and the API)."""
    from core.attribution.journeys import aggregate_journeys, aggregate_paths

    names = parse_models(models)  # fail fast on a typo before reading millions of rows
    fmt = detect_format(df) if fmt == "auto" else fmt
    if fmt == "journeys":
        ps = aggregate_journeys(df, lookback_days=lookback_days, interactions=interactions)
    elif fmt == "paths":
        if interactions is not None:
            raise ValueError("an interaction filter needs journeys (touch rows); paths carry no interactions")
        ps = aggregate_paths(df)
        lookback_days = None
    else:
        raise ValueError(f"format must be 'journeys', 'paths' or 'auto', got {fmt!r}")
    result = run_attribution(ps, names, half_life_days=half_life_days, position_weights=position_weights,
                             markov_order=markov_order, lookback_days=lookback_days)
    result["format"] = fmt
    return result
