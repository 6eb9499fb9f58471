"""Touch-level view of journeys, the input of the causal journey model.

Paths (``PathSet``) drop what the causal model needs: the age of every touch of journeys that did not convert,
whether a touch was a view or a click, touches older than the lookback window, and what the person did before the
journey (prior orders, sessions, returning visitor). :class:`TouchTable` keeps them, one entry per touch, in
journey-then-time order, with per-journey outcomes and history. It is built by ``aggregate_journeys`` from the same
sorted rows as the paths, so both views agree on journeys and channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TouchTable", "VIEW_WORDS", "is_view"]

VIEW_WORDS = ("view", "impression")


def is_view(interaction: str) -> bool:
    """A touch the person saw but did not click (``view``, ``impression``, ``video_view``…)."""
    name = interaction.strip().lower()
    return any(w in name for w in VIEW_WORDS)


@dataclass
class TouchTable:
    """Every touch before each journey's decision point (its purchase, or its last visit), oldest first.

    ``journey``/``channel``/``age_days``/``view`` are per touch (``channel`` indexes ``channels``, the same list as
    the paths'); ``converted``/``revenue`` per journey; ``history`` maps a history column to its per-journey value.
    Touches are not cut by the lookback window here: the causal model chooses its own window.
    """

    channels: list[str]
    journey: np.ndarray
    channel: np.ndarray
    age_days: np.ndarray
    view: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray
    history: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_journeys(self) -> int:
        return len(self.converted)

    @property
    def has_views(self) -> bool:
        return bool(self.view.any()) and not bool(self.view.all())

    def repeat_index(self, mask: np.ndarray | None = None) -> np.ndarray:
        """1 for a channel's first touch in its journey, 2 for the second, … (among touches where ``mask``)."""
        idx = np.flatnonzero(mask) if mask is not None else np.arange(len(self.journey))
        key = self.journey[idx].astype(np.int64) * (len(self.channels) + 1) + self.channel[idx]
        order = np.argsort(key, kind="stable")  # touches are time-ordered within a journey: stable keeps it
        sk = key[order]
        starts = np.flatnonzero(np.concatenate([[True], sk[1:] != sk[:-1]]))
        run = np.diff(np.concatenate([starts, [len(sk)]]))
        rank = np.arange(len(sk)) - np.repeat(starts, run) + 1
        out = np.empty(len(idx), dtype=np.int32)
        out[order] = rank
        return out

    def subset(self, journeys: np.ndarray) -> TouchTable:
        """The table restricted to the given journey numbers (renumbered 0..k−1 in the given order)."""
        journeys = np.asarray(journeys, dtype=np.int64)
        remap = np.full(self.n_journeys, -1, dtype=np.int64)
        remap[journeys] = np.arange(len(journeys))
        keep = remap[self.journey] >= 0
        new_j = remap[self.journey[keep]]
        order = np.argsort(new_j, kind="stable")
        return TouchTable(
            channels=self.channels,
            journey=new_j[order],
            channel=self.channel[keep][order],
            age_days=self.age_days[keep][order],
            view=self.view[keep][order],
            converted=self.converted[journeys],
            revenue=self.revenue[journeys],
            history={k: v[journeys] for k, v in self.history.items()},
        )
