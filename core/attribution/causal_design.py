"""Design matrices of the causal journey model: what a touch is worth by age, repeat and kind, and who was touched.

A :class:`Spec` fixes the assumptions one candidate model makes (lookback window, half-life of a touch's effect,
how much each repeat of a channel adds, the link between effects and the chance to buy). :func:`build_design`
turns a :class:`~core.attribution.touches.TouchTable` into

* ``X`` (journeys × effect columns): per credited channel, the sum over its touches of
  ``0.5^(age / half_life) · repeat^(k − 1)`` — a click column, and a view column when the journeys mark views;
* ``Z`` (journeys × intent columns): what says how likely the person already was to buy — the history columns
  (prior orders, sessions before, returning visitor) and the touches of **intent channels** (direct visits, brand
  search, organic), which are signals of intent rather than causes and get no credit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.attribution.journeys import DIRECT_NAMES
from core.attribution.touches import TouchTable

__all__ = ["Spec", "Design", "build_design", "intent_channels", "INTENT_WORDS"]

INTENT_WORDS = ("direct", "brand search", "branded search", "brand_search", "organic", "(none)")


def intent_channels(channels: list[str]) -> list[str]:
    """Channels whose touches signal intent rather than cause it: direct visits, brand search, organic."""
    out = []
    for c in channels:
        name = c.strip().lower()
        if name in DIRECT_NAMES or any(w in name for w in INTENT_WORDS):
            out.append(c)
    return out


@dataclass(frozen=True)
class Spec:
    """One candidate's assumptions. ``window``/``half_life`` in days (None: unlimited / no decay)."""

    window: float | None = 30.0
    half_life: float | None = None
    repeat: float = 1.0
    link: str = "hazard"  # "hazard": independent chances 1 − exp(−η); "logistic": log-odds add up
    intent_role: str = "signal"  # intent channels as "signal" (no credit), "channel" (credited) or "both"
    synergy: bool = False  # a channel's first touch may raise the effect of the other channels' later touches

    def describe(self) -> dict:
        return {"window_days": self.window, "half_life_days": self.half_life, "repeat_factor": self.repeat,
                "link": self.link, "intent_channels_as": self.intent_role, "synergy": self.synergy}


def _synergy_columns(tt: TouchTable, idx: np.ndarray, weight: np.ndarray, credited: list[int],
                     groups: list[list[int]], f: int) -> np.ndarray:
    """Per credited channel a: the weighted touches of other channels after a's first touch (a's amplification).

    The column joins a's group, so removing a also removes the lift it gave the touches that followed it.
    """
    jj, cc = tt.journey[idx], tt.channel[idx]
    order = np.arange(len(idx))  # touches are time-ordered within a journey
    cols = []
    for g, a in enumerate(credited):
        first = np.full(tt.n_journeys, len(idx), dtype=np.int64)
        mine = cc == a
        np.minimum.at(first, jj[mine], order[mine])
        after = ~mine & (order > first[jj])
        cols.append(np.bincount(jj[after], weights=weight[after], minlength=tt.n_journeys))
        groups[g].append(f + g)
    return np.column_stack(cols)


@dataclass
class Design:
    """Model inputs for one spec: effect columns, intent columns and which columns belong to which channel."""

    X: np.ndarray
    Z: np.ndarray
    groups: list[list[int]]  # per credited channel: its X columns
    credited: list[int]  # channel indices (into TouchTable.channels) that get credit
    intent_names: list[str]  # names of the Z columns
    y: np.ndarray
    z_stats: tuple[np.ndarray, np.ndarray] | None = None  # the (mean, sd) Z was standardised with


def build_design(tt: TouchTable, spec: Spec, intent: list[int], z_stats: tuple | None = None) -> Design:
    """Effect and intent columns for ``spec``; ``z_stats`` (mean, sd) standardises Z like a previous design."""
    n_j = tt.n_journeys
    signal = intent if spec.intent_role in {"signal", "both"} else []
    intent = intent if spec.intent_role == "signal" else []  # the channels kept out of the credited set
    in_window = np.ones(len(tt.age_days), dtype=bool) if spec.window is None else tt.age_days <= spec.window
    is_intent = np.isin(tt.channel, intent)
    effect = in_window & ~is_intent
    credited = [c for c in range(len(tt.channels)) if c not in set(intent)]
    views = tt.has_views
    col_of = np.full((len(tt.channels), 2), -1, dtype=np.int64)
    groups: list[list[int]] = []
    f = 0
    for c in credited:
        cols = [f] + ([f + 1] if views else [])
        col_of[c, 0] = f
        col_of[c, 1] = f + 1 if views else f
        groups.append(cols)
        f += len(cols)
    idx = np.flatnonzero(effect)
    weight = np.ones(len(idx))
    if spec.half_life is not None:
        weight *= 0.5 ** (tt.age_days[idx] / spec.half_life)
    if spec.repeat != 1.0:
        weight *= spec.repeat ** (tt.repeat_index(effect) - 1)
    cols = col_of[tt.channel[idx], tt.view[idx].astype(np.int64)]
    X = np.bincount(tt.journey[idx] * f + cols, weights=weight, minlength=n_j * f).reshape(n_j, f) if f else \
        np.zeros((n_j, 0))
    if spec.synergy and len(credited) > 1:
        X = np.column_stack([X, _synergy_columns(tt, idx, weight, credited, groups, f)])

    z_cols, names = [], []
    for c in signal:
        sel = in_window & (tt.channel == c)
        counts = np.bincount(tt.journey[sel], minlength=n_j).astype(float)
        z_cols.append(np.log1p(counts))
        names.append(f"{tt.channels[c]} visits")
    for name, values in tt.history.items():
        z_cols.append(values if name == "returning" else np.log1p(values))
        names.append(name.replace("_", " "))
    Z = np.column_stack(z_cols) if z_cols else np.zeros((n_j, 0))
    mean, sd = z_stats if z_stats is not None else (Z.mean(0), Z.std(0))
    sd = np.where(sd > 0, sd, 1.0)
    if Z.shape[1]:
        Z = (Z - mean) / sd
    return Design(X=X, Z=Z, groups=groups, credited=credited, intent_names=names, y=tt.converted.astype(float),
                  z_stats=(mean, sd))

