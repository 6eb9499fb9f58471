"""Field-level parsing and checks shared by the importers: dates, numbers, text, duplicates, gaps.

Each check appends :class:`~core.data.schemas.Problem` entries (file, CSV row, column, what is wrong) instead of
stopping at the first one, so a user sees everything to fix at once. Rows are numbered as CSV lines: the header is
line 1, the first data row line 2.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from core.data.schemas import ImportRejected, Problem

__all__ = [
    "read_frame", "row_numbers", "blank_mask", "parse_dates", "parse_numbers", "parse_text", "check_duplicates",
    "fmt_value", "check_unknown", "check_missing", "infer_granularity", "check_gaps",
]


# --- reading --------------------------------------------------------------------------------------------------
def read_frame(name: str, data: bytes) -> pd.DataFrame:
    """Parse one uploaded file (CSV, TSV or Parquet) into a frame of raw values; unreadable → ImportRejected."""
    lower = name.lower()
    if not data or not data.strip():
        raise ImportRejected([Problem(name, "the file is empty")])
    try:
        if lower.endswith(".parquet"):
            df = pd.read_parquet(io.BytesIO(data))
        else:
            sep = "\t" if lower.endswith((".tsv", ".tab")) else ","
            df = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                             skipinitialspace=True)
    except Exception as e:  # noqa: BLE001 - any parser error becomes a listed problem
        raise ImportRejected([Problem(name, f"cannot be read as {'Parquet' if lower.endswith('.parquet') else 'CSV'}"
                                             f": {str(e).splitlines()[0] if str(e) else type(e).__name__}")]) from e
    return df


# --- field parsing --------------------------------------------------------------------------------------------
def row_numbers(mask: np.ndarray | pd.Series) -> np.ndarray:
    """1-based file row numbers (header = row 1) of the rows where ``mask`` holds, for problem reports."""
    return np.flatnonzero(np.asarray(mask)) + 2


def blank_mask(s: pd.Series) -> np.ndarray:
    """True where a cell is empty, NaN or only whitespace."""
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return (s.isna() | s.astype(str).str.strip().eq("")).to_numpy()
    return s.isna().to_numpy()


def parse_dates(df: pd.DataFrame, col: str, file: str, problems: list[Problem], required: bool = True) -> pd.Series:
    """Parse a date column; every unparsable (or, when required, missing) cell becomes a problem with its row."""
    raw = df[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw)
    else:
        text = raw.astype("string").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        retry = parsed.isna() & ~pd.Series(blank_mask(raw), index=raw.index)
        if retry.any():
            parsed.loc[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    blank = blank_mask(raw)
    bad = parsed.isna().to_numpy() & ~blank
    for r, v in zip(row_numbers(bad), raw[bad], strict=True):
        problems.append(Problem(file, f"{v!r} is not a date (use YYYY-MM-DD)", int(r), col))
    if required:
        for r in row_numbers(blank):
            problems.append(Problem(file, "date is missing", int(r), col))
    return parsed.dt.normalize()


def parse_numbers(df: pd.DataFrame, col: str, file: str, problems: list[Problem], *, required: bool = False,
             non_negative: bool = True) -> pd.Series:
    """Parse a numeric column (a leading $ and thousands commas allowed); bad, infinite and (by default) negative
    values become problems with their row."""
    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw):
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        blank = values.isna().to_numpy()
        bad = np.zeros(len(raw), dtype=bool)
    else:
        text = raw.astype("string").str.strip().str.replace(r"^\$|,", "", regex=True)
        values = pd.to_numeric(text, errors="coerce").astype(float)
        blank = blank_mask(raw)
        bad = values.isna().to_numpy() & ~blank
        for r, v in zip(row_numbers(bad), raw[bad], strict=True):
            problems.append(Problem(file, f"{v!r} is not a number", int(r), col))
    if required:
        for r in row_numbers(blank):
            problems.append(Problem(file, "value is missing", int(r), col))
    inf = np.isinf(values.to_numpy())
    for r in row_numbers(inf):
        problems.append(Problem(file, "value is infinite", int(r), col))
    if non_negative:
        neg = (values < 0).to_numpy()
        for r, v in zip(row_numbers(neg), values[neg], strict=True):
            problems.append(Problem(file, f"{col} is negative ({v:g})", int(r), col))
    return values


def parse_text(df: pd.DataFrame, col: str, file: str, problems: list[Problem], required: bool = True) -> pd.Series:
    """A trimmed text column; missing cells are problems when the column is required."""
    raw = df[col]
    blank = blank_mask(raw)
    if required:
        for r in row_numbers(blank):
            problems.append(Problem(file, f"{col} is missing", int(r), col))
    return raw.astype("string").str.strip().where(~pd.Series(blank, index=raw.index)).astype(object)


def check_duplicates(df: pd.DataFrame, key: list[str], file: str, problems: list[Problem]) -> None:
    """Report rows that repeat a key (e.g. date and channel), naming the first row of each duplicate."""
    valid = df[key].notna().all(axis=1)
    dup = (df.duplicated(key, keep="first") & valid).to_numpy()
    if not dup.any():
        return
    pos = pd.Series(np.arange(len(df)), index=df.index)
    first = pos.groupby([df[k] for k in key], dropna=False).transform("min").to_numpy()
    for i in np.flatnonzero(dup):
        vals = ", ".join(fmt_value(df[k].iloc[i]) for k in key)
        problems.append(Problem(file, f"duplicate {'/'.join(key)} ({vals}); first seen on row {int(first[i]) + 2}",
                                int(i) + 2, key[-1]))


def fmt_value(v: Any) -> str:
    """A cell value as shown in a problem message (dates as YYYY-MM-DD)."""
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    return str(v)


def check_unknown(cols: list[str], allowed: tuple[str, ...], file: str, problems: list[Problem], what: str) -> None:
    """Report columns the file kind does not know, so a typo is not silently ignored."""
    for c in cols:
        if c not in allowed:
            problems.append(Problem(file, f"unknown column for {what} (expected: {', '.join(allowed)})", None, c))


def check_missing(cols: list[str], required: tuple[str, ...], file: str, problems: list[Problem], what: str) -> bool:
    """Report required columns that are absent; True when any is missing."""
    miss = [c for c in required if c not in cols]
    for c in miss:
        problems.append(Problem(file, f"required column is missing for {what}", None, c))
    return bool(miss)


# --- granularity and gaps -------------------------------------------------------------------------------------
def infer_granularity(dates: pd.Series) -> str | None:
    """"day" or "week" from the spacing of the distinct dates (None when neither or too few)."""
    u = pd.Series(pd.to_datetime(dates.dropna().unique())).sort_values()
    if len(u) < 2:
        return None
    step = u.diff().dropna().dt.days
    mode = int(step.mode().iloc[0])
    return {1: "day", 7: "week"}.get(mode)


def check_gaps(dates: pd.Series, granularity: str, file: str, problems: list[Problem]) -> None:
    """Report missing dates in a daily or weekly series (a gap would bias every time-series model)."""
    d = pd.to_datetime(dates)
    u = pd.Series(d.dropna().unique()).sort_values(ignore_index=True)
    step = 1 if granularity == "day" else 7
    diffs = u.diff().dt.days
    bad = np.flatnonzero((diffs != step).to_numpy()[1:]) + 1
    if not len(bad):
        return
    first_row = pd.Series(np.arange(len(d)), index=d.to_numpy()).groupby(level=0).min()
    for i in bad:
        gap = int(diffs.iloc[i])
        prev, cur = u.iloc[i - 1].date(), u.iloc[i].date()
        row = int(first_row[u.iloc[i]]) + 2
        if granularity == "week" and gap % 7:
            msg = f"weekly dates must be 7 days apart: {prev} is followed by {cur} ({gap} days)"
        else:
            missing = gap // step - 1
            unit = "day" if step == 1 else "week"
            msg = f"gap in dates: nothing between {prev} and {cur} ({missing} {unit}{'s' if missing != 1 else ''} " \
                  f"missing)"
        problems.append(Problem(file, msg, row, "date"))
