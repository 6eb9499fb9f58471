"""Customer journeys for attribution: validation, lookback window and aggregation into distinct paths.

Two input shapes are accepted:

* **journeys** (long format, one row per touch): ``journey_id, timestamp, channel, converted, revenue`` and
  optionally ``customer_id`` and ``interaction``. ``converted``/``revenue`` may sit on the converting touch only or
  be repeated on every row of the journey; a journey converts at most once.
* **paths** (already aggregated): ``path`` ("Google Ads > Email > Meta Ads"), ``conversions`` and optionally
  ``revenue`` and ``nulls`` (journeys of that path that did not convert).

Every model works on a :class:`PathSet`: the distinct channel sequences with their conversion, revenue and
non-conversion counts (1M journeys collapse to a few thousand paths), plus the touch ages of converting journeys
for the time-decay model. Aggregating first is what keeps all models vectorised and fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from core.attribution.touches import TouchTable, is_view
from core.attribution.validation import (
    HISTORY_COLUMNS,
    JOURNEY_COLUMNS,
    PATH_COLUMNS,
    JourneyValidationError,
    validate_journeys,
    validate_paths,
)

__all__ = [
    "JourneyValidationError",
    "PathSet",
    "validate_journeys",
    "validate_paths",
    "aggregate_journeys",
    "aggregate_paths",
    "read_journeys_csv",
    "DIRECT_NAMES",
]

DIRECT_NAMES = frozenset({"direct", "(direct)", "direct traffic", "none"})


@dataclass
class PathSet:
    """Distinct channel paths with counts, the common input of every attribution model.

    ``paths[i]`` is a tuple of channel codes (indices into ``channels``) in time order. ``conversions``,
    ``revenue`` and ``nulls`` are per-path totals. ``touch_group``/``touch_channel``/``touch_age_days`` describe the
    touches of converting units (journeys, or paths when no timestamps exist) with ``group_conversions`` and
    ``group_revenue`` per unit; they feed the time-decay model. ``touches`` (journeys input only) keeps every touch
    with its age, view/click and the journey's history, for the causal model.
    """

    channels: list[str]
    paths: list[tuple[int, ...]]
    conversions: np.ndarray
    revenue: np.ndarray
    nulls: np.ndarray
    touch_group: np.ndarray
    touch_channel: np.ndarray
    touch_age_days: np.ndarray
    group_conversions: np.ndarray
    group_revenue: np.ndarray
    journeys: int
    dropped_touches: int = 0
    dropped_conversions: float = 0.0
    has_timestamps: bool = True
    touches: TouchTable | None = field(default=None, repr=False)
    _flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def total_conversions(self) -> float:
        return float(self.conversions.sum())

    @property
    def total_revenue(self) -> float:
        return float(self.revenue.sum())

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Touches of all distinct paths flattened: (path index, position, channel code, path length); cached."""
        if self._flat is None:
            lengths = np.fromiter((len(p) for p in self.paths), dtype=np.int64, count=len(self.paths))
            chan = np.fromiter((c for p in self.paths for c in p), dtype=np.int64, count=int(lengths.sum()))
            self._flat = _flatten(lengths, chan)
        return self._flat

    def path_strings(self, sep: str = " > ") -> list[str]:
        """The paths as text, e.g. ``"Google Ads > Email"``."""
        return [sep.join(self.channels[c] for c in p) for p in self.paths]

    def to_frame(self) -> pd.DataFrame:
        """Paths table (``path, conversions, revenue, nulls``) — the aggregated format."""
        return pd.DataFrame(
            {"path": self.path_strings(), "conversions": self.conversions, "revenue": self.revenue,
             "nulls": self.nulls}
        )


def _flatten(lengths: np.ndarray, chan: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    path_idx = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, dtype=np.int64)
    pos = np.arange(len(chan)) - starts[path_idx]
    return path_idx, pos, chan, lengths[path_idx]


# ------------------------------------------------------------------------------------------------ aggregation
def _is_direct(name: str) -> bool:
    return name.strip().lower() in DIRECT_NAMES


def _unique_paths(codes: np.ndarray, pos: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                  base: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct journeys from their flat touch codes (≥ 1, journey-then-time order): (first journey of each, inverse).

    Short journeys get an exact positional key; long ones a 64-bit hash, verified touch by touch against each
    group's first journey (only a collision, about n²/2⁶⁴, falls back to sorting padded rows). Work is O(touches),
    never journeys × the longest journey.
    """
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    width = int(lengths.max())
    max_len_exact = int(np.floor(62 / np.log2(base))) if base > 1 else width
    if width <= max_len_exact:
        weights = np.int64(base) ** (width - 1 - pos).astype(np.int64)
        key = np.add.reduceat(codes.astype(np.int64) * weights, starts)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse.ravel()
    mult = np.random.default_rng(0x5EED).integers(1, 2**62, size=width, dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        key = np.add.reduceat(codes.astype(np.uint64) * mult[pos], starts, dtype=np.uint64)
        key ^= lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    journey = np.repeat(np.arange(len(lengths)), lengths)
    lead = first[inverse]
    if np.array_equal(lengths[lead], lengths) and np.array_equal(codes[starts[lead[journey]] + pos], codes):
        return first, inverse
    padded = np.zeros((len(lengths), width), dtype=np.int64)
    padded[journey, pos] = codes
    _, first, inverse = np.unique(padded, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def aggregate_journeys(
    journeys: pd.DataFrame,
    lookback_days: float | None = 30.0,
    interactions: Iterable[str] | None = None,
    validated: bool = False,
) -> PathSet:
    """Collapse a long journeys table into distinct paths.

    Touches after a journey's conversion are dropped (they cannot have caused it), as are touches older than
    ``lookback_days`` before the conversion (or before the last touch of a journey that did not convert), and
    touches whose ``interaction`` is not in ``interactions`` (when given). A converting journey left with no touch
    is not attributable; its conversions are counted in ``dropped_conversions``.
    """
    df = journeys if validated else validate_journeys(journeys)
    if len(df) == 0:
        raise ValueError("the journeys table has no rows")
    if lookback_days is not None and lookback_days <= 0:
        raise ValueError(f"lookback_days must be positive, got {lookback_days}")
    n_rows = len(df)
    jcodes_all = df["journey_id"].cat.codes.to_numpy().astype(np.int64)
    ts_all = df["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    # sort by journey then time (stable: ties keep file order); skip when the file is already in that order
    dj = np.diff(jcodes_all)
    order = None if np.all((dj > 0) | ((dj == 0) & (np.diff(ts_all) >= 0))) else np.lexsort((ts_all, jcodes_all))

    def ordered(a: np.ndarray) -> np.ndarray:
        return a if order is None else a[order]

    jc = ordered(jcodes_all)
    ts = ordered(ts_all)
    conv_row = ordered(df["converted"].to_numpy(dtype=bool))
    rev_row = ordered(df["revenue"].to_numpy(dtype=float))
    chan_all = ordered(df["channel"].cat.codes.to_numpy().astype(np.int64))
    channels_all = [str(c) for c in df["channel"].cat.categories]

    starts = np.flatnonzero(np.concatenate([[True], jc[1:] != jc[:-1]]))
    seg_len = np.diff(np.concatenate([starts, [n_rows]]))
    seg = np.repeat(np.arange(len(starts)), seg_len)  # journey number (0..J-1) of every sorted row
    n_j = len(starts)
    converted_j = np.logical_or.reduceat(conv_row, starts)
    revenue_j = np.maximum.reduceat(np.where(conv_row | (rev_row > 0), rev_row, 0.0), starts)
    neg = np.iinfo(np.int64).min
    # the conversion time: the last row flagged as converted (the last touch if the flag is repeated on every row)
    conv_time = np.maximum.reduceat(np.where(conv_row, ts, neg), starts)
    last_time = ts[starts + seg_len - 1]
    ref_time = np.where(converted_j, conv_time, last_time)

    age_days = (ref_time[seg] - ts).astype(np.float64) / 86_400e9
    keep = age_days >= 0
    if interactions is not None:
        if "interaction" not in df.columns:
            raise ValueError("an interaction filter was given but the journeys have no 'interaction' column")
        wanted = {str(i).strip().lower() for i in interactions}
        cats = df["interaction"].cat.categories
        ok = np.array([str(c).lower() in wanted for c in cats], dtype=bool)
        icodes = ordered(df["interaction"].cat.codes.to_numpy())
        keep &= np.where(icodes >= 0, ok[np.maximum(icodes, 0)], False)
    before = keep.copy()  # touches before the decision point, whatever their age: the causal model's input
    if lookback_days is not None:
        keep &= age_days <= lookback_days

    dropped_touches = int(n_rows - keep.sum())
    tj = seg[keep]
    used = np.unique(chan_all[keep])
    used = used[np.argsort([channels_all[c] for c in used], kind="stable")]  # channels in name order
    remap = np.full(len(channels_all), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    channels = [channels_all[c] for c in used]
    tc = remap[chan_all[keep]]
    t_age = age_days[keep]

    lengths_all = np.bincount(tj, minlength=n_j)
    has_touch = lengths_all > 0
    dropped_conversions = float(converted_j[~has_touch].sum())
    jmap = np.cumsum(has_touch) - 1  # renumber the journeys that keep touches
    tj = jmap[tj]
    conv_l = converted_j[has_touch].astype(float)
    rev_l = revenue_j[has_touch]
    lengths = lengths_all[has_touch]
    n_live = len(lengths)
    lstarts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(len(tj)) - lstarts[tj]
    width = int(lengths.max()) if n_live else 0
    first, inverse = _unique_paths(tc + 1, pos, lstarts, lengths, len(channels) + 1)
    n_p = len(first)
    p_conv = np.bincount(inverse, weights=conv_l, minlength=n_p)
    p_rev = np.bincount(inverse, weights=rev_l, minlength=n_p)
    p_null = np.bincount(inverse, weights=1.0 - conv_l, minlength=n_p)
    sel_touch = np.isin(tj, first)  # only the distinct paths' own touches are laid out as rows
    rank = np.full(n_live, -1, dtype=np.int64)
    rank[first] = np.arange(n_p)
    rows = np.full((n_p, width), -1, dtype=np.int64)
    rows[rank[tj[sel_touch]], pos[sel_touch]] = tc[sel_touch]
    p_len = lengths[first]
    flat_chan = rows[np.arange(width)[None, :] < p_len[:, None]]
    paths = [tuple(r[:n]) for r, n in zip(rows.tolist(), p_len.tolist(), strict=True)]

    touches = _touch_table(df, ordered, before, seg, chan_all, remap, age_days, channels, converted_j, revenue_j,
                           starts)
    conv_touch = conv_l[tj] > 0
    conv_groups = np.flatnonzero(conv_l > 0)
    gmap = np.full(n_live, -1, dtype=np.int64)
    gmap[conv_groups] = np.arange(len(conv_groups))
    return PathSet(
        channels=channels,
        paths=paths,
        conversions=p_conv,
        revenue=p_rev,
        nulls=p_null,
        touch_group=gmap[tj[conv_touch]],
        touch_channel=tc[conv_touch],
        touch_age_days=t_age[conv_touch],
        group_conversions=conv_l[conv_groups],
        group_revenue=rev_l[conv_groups],
        journeys=n_live,
        dropped_touches=dropped_touches,
        dropped_conversions=dropped_conversions,
        has_timestamps=True,
        touches=touches,
        _flat=_flatten(p_len, flat_chan.astype(np.int64)),
    )


def _touch_table(df: pd.DataFrame, ordered, before: np.ndarray, seg: np.ndarray, chan_all: np.ndarray,
                 remap: np.ndarray, age_days: np.ndarray, channels: list[str], converted_j: np.ndarray,
                 revenue_j: np.ndarray, starts: np.ndarray) -> TouchTable:
    """Touches before each decision point (no lookback cut) of the channels the paths know, with history."""
    sel = before & (remap[chan_all] >= 0)
    if "interaction" in df.columns:
        cats = df["interaction"].cat.categories
        view_cat = np.array([is_view(str(c)) for c in cats] + [False], dtype=bool)  # code −1 (missing) → click
        icodes = ordered(df["interaction"].cat.codes.to_numpy())
        view = view_cat[np.where(icodes >= 0, icodes, len(cats))][sel]
    else:
        view = np.zeros(int(sel.sum()), dtype=bool)
    history = {}
    for col in HISTORY_COLUMNS:
        if col in df.columns:
            history[col] = np.maximum.reduceat(ordered(df[col].to_numpy(dtype=float)), starts)
    return TouchTable(
        channels=channels,
        journey=seg[sel].astype(np.int64),
        channel=remap[chan_all[sel]].astype(np.int64),
        age_days=age_days[sel],
        view=view,
        converted=converted_j.astype(bool),
        revenue=np.where(converted_j, revenue_j, 0.0),
        history=history,
    )


def aggregate_paths(paths: pd.DataFrame, step_days: float = 1.0, validated: bool = False) -> PathSet:
    """Build a :class:`PathSet` from an aggregated paths table.

    Paths carry no timestamps, so the time-decay model treats consecutive steps as ``step_days`` apart (the last
    step is the conversion). Identical paths listed on several rows are summed.
    """
    df = paths if validated else validate_paths(paths)
    if len(df) == 0:
        raise ValueError("the paths table has no rows")
    channels = sorted({c for p in df["path"] for c in p})
    code = {c: i for i, c in enumerate(channels)}
    coded = [tuple(code[c] for c in p) for p in df["path"]]
    agg = (
        pd.DataFrame({"p": coded, "c": df["conversions"], "r": df["revenue"], "n": df["nulls"]})
        .groupby("p", sort=False)[["c", "r", "n"]]
        .sum()
    )
    plist = list(agg.index)
    conv = agg["c"].to_numpy(float)
    rev = agg["r"].to_numpy(float)
    lengths = np.fromiter((len(p) for p in plist), dtype=np.int64, count=len(plist))
    groups = np.flatnonzero(conv > 0)
    g_len = lengths[groups]
    touch_group = np.repeat(np.arange(len(groups)), g_len)
    starts = np.concatenate([[0], np.cumsum(g_len)[:-1]]) if len(groups) else np.zeros(0, dtype=np.int64)
    pos = np.arange(int(g_len.sum())) - np.repeat(starts, g_len)
    touch_channel = np.fromiter((c for g in groups for c in plist[g]), dtype=np.int64, count=int(g_len.sum()))
    age = (np.repeat(g_len, g_len) - 1 - pos) * float(step_days)
    return PathSet(
        channels=channels,
        paths=plist,
        conversions=conv,
        revenue=rev,
        nulls=agg["n"].to_numpy(float),
        touch_group=touch_group,
        touch_channel=touch_channel,
        touch_age_days=age.astype(float),
        group_conversions=conv[groups],
        group_revenue=rev[groups],
        journeys=int(round(conv.sum() + agg["n"].sum())),
        has_timestamps=False,
    )


def read_journeys_csv(path_or_buffer: str | Path | IO[bytes] | IO[str], fmt: str = "journeys") -> pd.DataFrame:
    """Read a journeys or paths CSV fast with pyarrow (ids and channels dictionary-encoded while parsing).

    Falls back to pandas' C parser for files pyarrow rejects, which reports the offending line.
    """
    if fmt not in {"journeys", "paths"}:
        raise ValueError(f"format must be 'journeys' or 'paths', got {fmt!r}")
    import pyarrow as pa
    import pyarrow.csv as pacsv

    start = path_or_buffer.tell() if hasattr(path_or_buffer, "seek") else None
    dict_type = pa.dictionary(pa.int32(), pa.string())
    types = ({"journey_id": dict_type, "channel": dict_type, "interaction": dict_type, "customer_id": pa.string()}
             if fmt == "journeys" else {"path": pa.string()})
    wanted = set(JOURNEY_COLUMNS if fmt == "journeys" else PATH_COLUMNS)
    try:
        # only the columns attribution uses (customer ids and extra columns are skipped while parsing)
        convert = pacsv.ConvertOptions(column_types=types, include_columns=None)
        reader = pacsv.open_csv(path_or_buffer, convert_options=convert)
        names = [n for n in reader.schema.names if n.strip().lower() in wanted] or reader.schema.names
        reader.close()
        if start is not None:
            path_or_buffer.seek(start)
        convert = pacsv.ConvertOptions(column_types=types, include_columns=names)
        table = pacsv.read_csv(path_or_buffer, convert_options=convert)
        df = table.to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        if start is not None:
            path_or_buffer.seek(start)
        try:
            df = pd.read_csv(path_or_buffer, dtype={"journey_id": "string", "path": "string"})
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise ValueError(f"the CSV file cannot be read: {e}") from e
        except pd.errors.EmptyDataError as e:
            raise ValueError("the CSV file is empty") from e
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df
