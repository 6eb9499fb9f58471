"""Validation of journeys and paths tables: every problem listed with its row and column, nothing half-accepted.

Rows are numbered as lines of a CSV file with a header line: the first data row is row 2. Text columns come back as
categoricals (labels stripped), so millions of touch rows stay cheap to hold and to group.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "JourneyValidationError",
    "validate_journeys",
    "validate_paths",
    "REQUIRED_JOURNEY_COLUMNS",
    "REQUIRED_PATH_COLUMNS",
    "JOURNEY_COLUMNS",
    "HISTORY_COLUMNS",
    "PATH_COLUMNS",
]

REQUIRED_JOURNEY_COLUMNS = ("journey_id", "timestamp", "channel", "converted", "revenue")
REQUIRED_PATH_COLUMNS = ("path", "conversions")
HISTORY_COLUMNS = ("prior_orders", "sessions_before", "returning")
JOURNEY_COLUMNS = (*REQUIRED_JOURNEY_COLUMNS, "interaction", *HISTORY_COLUMNS)
PATH_COLUMNS = (*REQUIRED_PATH_COLUMNS, "revenue", "nulls")
MAX_LISTED_PROBLEMS = 50
_TRUE = {"1", "true", "yes", "y", "t", "1.0"}
_FALSE = {"0", "false", "no", "n", "f", "0.0", ""}


class JourneyValidationError(ValueError):
    """Bad journeys or paths input; ``problems`` lists every problem as ``{"row", "column", "problem"}``.

    Rows are numbered as lines of a CSV file with a header line: the first data row is row 2.
    """

    def __init__(self, problems: list[dict], what: str = "journeys") -> None:
        self.problems = problems
        shown = problems[:MAX_LISTED_PROBLEMS]
        lines = [
            f"row {p['row']}, column {p['column']!r}: {p['problem']}" if p.get("row") is not None
            else f"column {p['column']!r}: {p['problem']}"
            for p in shown
        ]
        more = f"\n... and {len(problems) - len(shown)} more problems" if len(problems) > len(shown) else ""
        super().__init__(f"{len(problems)} problem(s) in the {what} data:\n" + "\n".join(lines) + more)


def _row_numbers(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask) + 2


def _problems(rows: np.ndarray, column: str, problem: str) -> list[dict]:
    return [{"row": int(r), "column": column, "problem": problem} for r in rows]


def _parse_bool(series: pd.Series, column: str, problems: list[dict]) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float)
        bad = ~np.isin(values, [0.0, 1.0])
        problems += _problems(_row_numbers(bad), column, "must be 0/1 or true/false")
        return values == 1.0
    text = series.astype("string").str.strip().str.lower().fillna("")
    is_true = text.isin(_TRUE).to_numpy()
    bad = ~(is_true | text.isin(_FALSE).to_numpy())
    for r, v in zip(_row_numbers(bad), series[bad], strict=True):
        problems.append({"row": int(r), "column": column, "problem": f"{v!r} is not 0/1 or true/false"})
    return is_true


def _parse_number(series: pd.Series, column: str, problems: list[dict], default: float = 0.0) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float)
        bad_text = np.zeros(len(values), dtype=bool)
    else:
        parsed = pd.to_numeric(series, errors="coerce")
        values = parsed.to_numpy(dtype=float)
        blank = series.isna().to_numpy() | (series.astype("string").str.strip().fillna("") == "").to_numpy()
        bad_text = np.isnan(values) & ~blank
        for r, v in zip(_row_numbers(bad_text), series[bad_text], strict=True):
            problems.append({"row": int(r), "column": column, "problem": f"{v!r} is not a number"})
    values = np.where(np.isnan(values), default, values)
    problems += _problems(_row_numbers(values < 0), column, "must not be negative")
    problems += _problems(_row_numbers(np.isinf(values)), column, "must be finite")
    return values


def _missing_columns(df: pd.DataFrame, required: Iterable[str], what: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise JourneyValidationError(
            [{"row": None, "column": c, "problem": f"required column is missing (columns found: "
              f"{', '.join(map(str, df.columns))})"} for c in missing],
            what,
        )


def _as_clean_category(series: pd.Series, lower: bool = False) -> pd.Series:
    """A categorical copy with stripped labels (duplicates after stripping merged); empty labels become NaN."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cat = series
    else:  # hash-based factorize: no sort of millions of strings (categories in order of first appearance)
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        cat = pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object)),
                        index=series.index)
    cats = pd.Index(cat.cat.categories.astype(str))
    labels = cats.str.strip()
    if lower:
        labels = labels.str.lower()
    if labels.equals(cats) and not (labels == "").any():
        return cat  # already clean (the usual case): no re-coding of millions of rows
    remap, uniq = pd.factorize(labels)
    codes = cat.cat.codes.to_numpy()
    new_codes = np.where(codes >= 0, np.asarray(remap)[np.maximum(codes, 0)], -1)
    empty = np.flatnonzero(np.asarray(uniq) == "")
    if len(empty):
        new_codes = np.where(np.isin(new_codes, empty), -1, new_codes)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=pd.Index(uniq, dtype=object)), index=series.index)


def validate_journeys(df: pd.DataFrame) -> pd.DataFrame:
    """Check a long journeys table and return it normalised, or raise :class:`JourneyValidationError`.

    The result has columns ``journey_id`` (category), ``timestamp`` (datetime64), ``channel`` (category),
    ``converted`` (bool), ``revenue`` (float), ``interaction`` (category, lower case, if present) and the history
    columns ``prior_orders``, ``sessions_before`` (numbers ≥ 0) and ``returning`` (0/1) when present, in input
    order. Every problem is listed with its row and column; nothing is returned unless all rows are valid.
    """
    _missing_columns(df, REQUIRED_JOURNEY_COLUMNS, "journeys")
    problems: list[dict] = []
    jid = _as_clean_category(df["journey_id"])
    problems += _problems(_row_numbers(jid.cat.codes.to_numpy() < 0), "journey_id", "is empty")

    ts_raw = df["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts_raw):
        ts = pd.to_datetime(ts_raw)
        if getattr(ts.dt, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        ts = pd.to_datetime(ts_raw, errors="coerce", utc=True, format="mixed").dt.tz_localize(None)
    bad_ts = ts.isna().to_numpy()
    for r, v in zip(_row_numbers(bad_ts), ts_raw[bad_ts], strict=True):
        problems.append({"row": int(r), "column": "timestamp", "problem": f"{v!r} is not a date/time"})

    channel = _as_clean_category(df["channel"])
    problems += _problems(_row_numbers(channel.cat.codes.to_numpy() < 0), "channel", "is empty")
    converted = _parse_bool(df["converted"], "converted", problems)
    revenue = _parse_number(df["revenue"], "revenue", problems)

    out = pd.DataFrame({"journey_id": jid, "timestamp": ts, "channel": channel, "converted": converted,
                        "revenue": revenue})
    if "interaction" in df.columns:
        out["interaction"] = _as_clean_category(df["interaction"], lower=True)
    if "customer_id" in df.columns:
        out["customer_id"] = df["customer_id"]
    for col in HISTORY_COLUMNS:  # what the person did before the journey: the causal model's intent proxies
        if col in df.columns:
            values = (_parse_bool(df[col], col, problems).astype(float) if col == "returning"
                      else _parse_number(df[col], col, problems))
            out[col] = values

    if not problems:
        # revenue on a journey that never converts is a contradiction worth reporting with its rows
        codes = jid.cat.codes.to_numpy()
        conv_j = np.bincount(codes, weights=converted.astype(float), minlength=len(jid.cat.categories)) > 0
        bad_rev = (~conv_j[codes]) & (revenue > 0)
        problems += _problems(_row_numbers(bad_rev), "revenue", "revenue on a journey that never converts")
    if problems:
        problems.sort(key=lambda p: (p["row"] if p["row"] is not None else 0, p["column"]))
        raise JourneyValidationError(problems, "journeys")
    return out


def validate_paths(df: pd.DataFrame, sep: str = ">") -> pd.DataFrame:
    """Check an aggregated paths table (``path, conversions[, revenue, nulls]``) and return it normalised."""
    _missing_columns(df, REQUIRED_PATH_COLUMNS, "paths")
    problems: list[dict] = []
    text = df["path"].astype("string").fillna("")
    parts = text.str.split(sep)
    for i, (raw, steps) in enumerate(zip(text, parts, strict=True)):
        steps = [s.strip() for s in steps]
        if raw.strip() == "":
            problems.append({"row": i + 2, "column": "path", "problem": "is empty"})
        elif any(s == "" for s in steps):
            problems.append({"row": i + 2, "column": "path", "problem": f"{raw!r} has an empty channel step"})
    conversions = _parse_number(df["conversions"], "conversions", problems)
    revenue = _parse_number(df["revenue"], "revenue", problems) if "revenue" in df.columns else np.zeros(len(df))
    nulls = _parse_number(df["nulls"], "nulls", problems) if "nulls" in df.columns else np.zeros(len(df))
    bad_rev = (conversions == 0) & (revenue > 0)
    problems += _problems(_row_numbers(bad_rev), "revenue", "revenue on a path with no conversions")
    if problems:
        problems.sort(key=lambda p: (p["row"], p["column"]))
        raise JourneyValidationError(problems, "paths")
    return pd.DataFrame(
        {"path": [tuple(s.strip() for s in steps) for steps in parts], "conversions": conversions,
         "revenue": revenue, "nulls": nulls}
    )
