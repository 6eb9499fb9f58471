"""Lift tests as evidence in the fit: a measured incremental revenue for a known change of one channel's spend.

Where spend and revenue alone cannot separate a channel from the baseline (spend that barely varies, spend that
follows demand), an experiment can: raise or cut one channel's spend for a few weeks (a geo test, a holdout, a
flight) and measure the incremental revenue with its standard error. Each test enters the fit as a Gaussian
likelihood term on the model's own prediction of that lift: the change of the channel's modelled effect over the test
window when its daily spend moves by ``spend_change`` there. The prediction is linear in the channel's β (for a log
KPI to first order, ``ŷ·effect``), so the term joins the closed-form inner problem like the ROAS prior does.

Table (one row per test): channel, start, end (dates, inclusive: when the spend changed), spend_change (per day,
negative for a holdout or a cut), lift (incremental KPI measured from start to ``measured_until``, in the KPI's
units), se (its standard error, > 0); optional measured_until (a date ≥ end, default end): a test read out with a
cool-down period after the change also counts the carry-over, which a test read out at its end misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LIFT_COLUMNS", "LiftTests", "prepare_lift_tests"]

LIFT_COLUMNS = ("channel", "start", "end", "spend_change", "lift", "se")


@dataclass
class LiftTests:
    """Validated lift tests mapped onto the model's periods (arrays indexed by test)."""

    channel: np.ndarray  # (T,) channel index
    mask: np.ndarray  # (T, n) share of each period inside the measurement window (0..1)
    x_alt: np.ndarray  # (T, n) the channel's daily-average spend per period under the test
    lift: np.ndarray  # (T,) measured incremental KPI over the window
    se: np.ndarray  # (T,) its standard error
    windows: list[tuple[str, str]]  # (start, end) per test, as given
    spend_change: np.ndarray  # (T,) per day
    shift: np.ndarray | None = None  # (T,) a bootstrap replicate's draw, in standard errors

    def measured(self) -> np.ndarray:
        """The lifts the fit sees: as measured, or moved by ``shift`` standard errors in a replicate."""
        return self.lift if self.shift is None else self.lift + self.se * self.shift


def _share(day_start: np.ndarray, days: float, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Share of each period's days that fall inside [start, end] (inclusive)."""
    lo = np.maximum(day_start, np.datetime64(start.date()))
    hi = np.minimum(day_start + int(days), np.datetime64((end + pd.Timedelta(days=1)).date()))
    return np.clip((hi - lo).astype(int), 0, None) / days


def prepare_lift_tests(tests: pd.DataFrame, dates: pd.DatetimeIndex, days: float, channels: list[str],
                       x: np.ndarray) -> LiftTests:
    """Validate a lift-test table and map it onto the periods; ``ValueError`` names the row and column at fault.

    ``x`` is the daily-average spend per period (n, C). A window must overlap the data; a cut larger than the spend
    it cuts stops at zero spend.
    """
    tests = tests.rename(columns={"start_date": "start", "end_date": "end"})  # the import's canonical names
    missing = [c for c in LIFT_COLUMNS if c not in tests.columns]
    if missing:
        raise ValueError(f"lift_tests is missing column(s): {', '.join(missing)}; expected {', '.join(LIFT_COLUMNS)}")
    n = len(dates)
    first, last = dates[0], dates[-1] + pd.Timedelta(days=days - 1)
    day_start = dates.values.astype("datetime64[D]")
    rows_ch, masks, alts, lifts, ses, windows, changes = [], [], [], [], [], [], []
    for i, r in enumerate(tests.to_dict("records"), start=1):
        where = f"lift_tests row {i}"
        ch = str(r["channel"])
        if ch not in channels:
            raise ValueError(f"{where}, column channel: {ch!r} is not a channel of the model "
                             f"({', '.join(channels)})")
        try:
            start, end = pd.Timestamp(r["start"]), pd.Timestamp(r["end"])
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}, column start/end: not a date ({r['start']!r}, {r['end']!r})") from e
        if end < start:
            raise ValueError(f"{where}: end {end.date()} is before start {start.date()}")
        if end < first or start > last:
            raise ValueError(f"{where}: the window {start.date()}–{end.date()} is outside the data "
                             f"({first.date()}–{last.date()})")
        vals = {}
        for col in ("spend_change", "lift", "se"):
            v = pd.to_numeric(pd.Series([r[col]]), errors="coerce").iloc[0]
            if not np.isfinite(v):
                raise ValueError(f"{where}, column {col}: not a number ({r[col]!r})")
            vals[col] = float(v)
        if vals["se"] <= 0:
            raise ValueError(f"{where}, column se: the standard error must be > 0 (got {vals['se']:g})")
        if vals["spend_change"] == 0:
            raise ValueError(f"{where}, column spend_change: 0 — a test must change the spend")
        until = end
        if "measured_until" in r and not pd.isna(r["measured_until"]):
            try:
                until = pd.Timestamp(r["measured_until"])
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}, column measured_until: not a date ({r['measured_until']!r})") from e
            if until < end:
                raise ValueError(f"{where}, column measured_until: {until.date()} is before the end {end.date()}")
        spend_mask = _share(day_start, days, start, end)  # share of each period's days inside [start, end]
        c = channels.index(ch)
        rows_ch.append(c)
        masks.append(_share(day_start, days, start, until))
        alts.append(np.maximum(x[:, c] + vals["spend_change"] * spend_mask, 0.0))
        lifts.append(vals["lift"])
        ses.append(vals["se"])
        windows.append((str(start.date()), str(end.date())))
        changes.append(vals["spend_change"])
    if not rows_ch:
        raise ValueError("lift_tests has no rows")
    return LiftTests(np.array(rows_ch), np.array(masks).reshape(-1, n), np.array(alts).reshape(-1, n),
                     np.array(lifts), np.array(ses), windows, np.array(changes))
