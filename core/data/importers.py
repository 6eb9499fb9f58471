"""Turn a brand's own files into the canonical tables, listing every problem found.

Files are recognised by their columns (see :func:`core.data.schemas.detect_kind`): long marketing data, KPIs,
external factors, campaigns, journeys, controls, or the **wide** format (one row per date: date, revenue, one spend
column per channel, optional controls). :func:`build_dataset` validates everything and returns the tables, or raises
:class:`~core.data.schemas.ImportRejected` with one entry per problem (file, row, column, what is wrong); nothing is
partially accepted. Rows are numbered as CSV lines (header = line 1, first data row = 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data.fields import (
    blank_mask,
    check_duplicates,
    check_gaps,
    check_missing,
    check_unknown,
    fmt_value,
    infer_granularity,
    parse_dates,
    parse_numbers,
    parse_text,
    read_frame,
    row_numbers,
)
from core.data.schemas import (
    ALIASES,
    KIND_DESCRIPTIONS,
    MARKETING_METRICS,
    SCHEMAS,
    ImportRejected,
    Problem,
    detect_kind,
    is_spend_column,
    normalise_column,
    spend_column_channel,
)

__all__ = ["ImportOptions", "ImportResult", "read_frame", "build_dataset", "infer_granularity"]


@dataclass
class ImportOptions:
    """Column roles for wide files and the expected layout (``format`` "long", "wide" or None = recognise)."""

    kpi_col: str | None = None
    spend_cols: list[str] | None = None
    control_cols: list[str] | None = None
    date_col: str | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if self.format not in (None, "long", "wide"):
            raise ValueError(f"format must be 'long' or 'wide' (got {self.format!r})")


@dataclass
class ImportResult:
    """Validated canonical tables plus what the user should know about them."""

    tables: dict[str, pd.DataFrame]
    granularity: str
    channels: list[str]
    kinds: dict[str, str]  # file name → what it was read as
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def start_date(self) -> str:
        return pd.Timestamp(self.tables["marketing"]["date"].min()).date().isoformat()

    @property
    def end_date(self) -> str:
        return pd.Timestamp(self.tables["marketing"]["date"].max()).date().isoformat()


# --- per-kind validation --------------------------------------------------------------------------------------
def _marketing(df: pd.DataFrame, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    schema = SCHEMAS["marketing"]
    cols = list(df.columns)
    check_unknown(cols, schema.columns, file, problems, "marketing data")
    if check_missing(cols, schema.required, file, problems, "marketing data"):
        return None
    out = pd.DataFrame({"date": parse_dates(df, "date", file, problems),
                        "channel": parse_text(df, "channel", file, problems),
                        "spend": parse_numbers(df, "spend", file, problems, required=True)})
    for m in MARKETING_METRICS:
        out[m] = parse_numbers(df, m, file, problems) if m in df.columns else np.nan
    check_duplicates(out, ["date", "channel"], file, problems)
    return out


def _kpis(df: pd.DataFrame, file: str, problems: list[Problem], warnings: list[str],
          ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    schema = SCHEMAS["kpis"]
    if check_missing(list(df.columns), schema.required, file, problems, "KPIs"):
        return None, None
    out = pd.DataFrame({"date": parse_dates(df, "date", file, problems),
                        "revenue": parse_numbers(df, "revenue", file, problems, required=True)})
    for m in schema.optional:
        out[m] = parse_numbers(df, m, file, problems) if m in df.columns else np.nan
    check_duplicates(out, ["date"], file, problems)
    extra = [c for c in df.columns if c not in schema.columns]
    controls = _controls_from(df, out["date"], extra, file, problems, warnings, explicit=False)
    return out, controls


def _controls_from(df: pd.DataFrame, dates: pd.Series, cols: list[str], file: str, problems: list[Problem],
                   warnings: list[str], explicit: bool) -> pd.DataFrame | None:
    """Numeric extra columns become controls; non-numeric ones are reported (unless named as controls)."""
    if not cols:
        return None
    out = pd.DataFrame({"date": dates})
    auto = []
    for c in cols:
        raw = df[c]
        probe = pd.to_numeric(raw.astype("string").str.strip().str.replace(",", "", regex=False), errors="coerce")
        if explicit or probe.notna().sum() >= max(1, int(0.9 * (~pd.Series(blank_mask(raw))).sum())):
            out[c] = parse_numbers(df, c, file, problems, non_negative=False)
            auto.append(c)
        else:
            problems.append(Problem(file, "unknown column: not numeric, so it cannot be a control variable (name its "
                                    "role with --spend-cols/--control-cols or remove it)", None, c))
    if auto and not explicit:
        warnings.append(f"{file}: column(s) {', '.join(auto)} used as control variables")
    return out if len(out.columns) > 1 else None


def _wide(df: pd.DataFrame, file: str, opts: ImportOptions, problems: list[Problem], warnings: list[str],
          ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    cols = list(df.columns)
    if "date" not in cols:
        problems.append(Problem(file, "required column is missing (name it with --date-col)", None, "date"))
        return None, None, None
    kpi = normalise_column(opts.kpi_col) if opts.kpi_col else "revenue"
    if kpi not in cols:
        problems.append(Problem(file, "KPI column not found (name it with --kpi-col)", None, kpi))
    if opts.spend_cols:
        spend = [normalise_column(c) for c in opts.spend_cols]
        for c in spend:
            if c not in cols:
                problems.append(Problem(file, "spend column named in the options is not in the file", None, c))
        spend = [c for c in spend if c in cols]
    else:
        spend = [c for c in cols if c not in ("date", kpi) and is_spend_column(c)]
    if not spend:
        problems.append(Problem(file, "no spend columns found: name them like google_spend / spend_google / "
                                "google_cost or list them with --spend-cols"))
    controls_named = [normalise_column(c) for c in (opts.control_cols or [])]
    for c in controls_named:
        if c not in cols:
            problems.append(Problem(file, "control column named in the options is not in the file", None, c))
    controls_named = [c for c in controls_named if c in cols]
    rest = [c for c in cols if c not in ("date", kpi, *spend, *controls_named)]
    if opts.control_cols is not None:
        for c in rest:
            problems.append(Problem(file, "unknown column: not the date, KPI, a spend or a control column", None, c))
        rest = []
    dates = parse_dates(df, "date", file, problems)
    channels = [spend_column_channel(c) for c in spend]
    if len(set(channels)) != len(channels):
        problems.append(Problem(file, f"spend columns map to the same channel twice: {', '.join(spend)}"))
    long = []
    for c, ch in zip(spend, channels, strict=True):
        spend_values = parse_numbers(df, c, file, problems, required=True)
        part = pd.DataFrame({"date": dates, "channel": ch, "spend": spend_values})
        for m in MARKETING_METRICS:
            part[m] = np.nan
        long.append(part)
    marketing = pd.concat(long, ignore_index=True) if long else None
    kpis = None
    if kpi in cols:
        kpis = pd.DataFrame({"date": dates, "revenue": parse_numbers(df, kpi, file, problems, required=True),
                             "orders": np.nan, "new_customers": np.nan})
        check_duplicates(kpis, ["date"], file, problems)
    controls = _controls_from(df, dates, [*controls_named, *rest], file, problems, warnings,
                              explicit=opts.control_cols is not None)
    return marketing, kpis, controls


def _external(df: pd.DataFrame, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    cols = list(df.columns)
    schema = SCHEMAS["external_factors"]
    if "factor_type" not in cols and "factor_name" not in cols:
        # the brief's layout: date, is_holiday, holiday_name, competitor_activity, seasonality_index
        allowed = ("date", "is_holiday", "holiday_name", "competitor_activity", "seasonality_index")
        check_unknown(cols, allowed, file, problems, "external factors")
        dates = parse_dates(df, "date", file, problems)
        idx = parse_numbers(df, "seasonality_index", file, problems) if "seasonality_index" in cols else None
        rows = []
        holiday = df["is_holiday"].astype("string").str.strip().str.lower().isin(["1", "true", "yes", "y", "t"]) \
            if "is_holiday" in cols else pd.Series(False, index=df.index)
        for i in range(len(df)):
            mult = float(idx.iloc[i]) if idx is not None and pd.notna(idx.iloc[i]) else np.nan
            name = df["holiday_name"].iloc[i] if "holiday_name" in cols else None
            if holiday.iloc[i] or (isinstance(name, str) and name.strip()):
                rows.append((dates.iloc[i], "holiday", str(name or "Holiday").strip(), mult, ""))
            comp = df["competitor_activity"].iloc[i] if "competitor_activity" in cols else None
            if isinstance(comp, str) and comp.strip():
                rows.append((dates.iloc[i], "competitor", comp.strip(), np.nan, comp.strip()))
            if idx is not None and pd.notna(mult) and mult != 1.0 and not holiday.iloc[i]:
                rows.append((dates.iloc[i], "seasonality", "Seasonality index", mult, ""))
        return pd.DataFrame(rows, columns=list(schema.columns))
    check_unknown(cols, schema.columns, file, problems, "external factors")
    if check_missing(cols, schema.required, file, problems, "external factors"):
        return None
    out = pd.DataFrame({"date": parse_dates(df, "date", file, problems),
                        "factor_type": parse_text(df, "factor_type", file, problems),
                        "factor_name": parse_text(df, "factor_name", file, problems)})
    out["impact_multiplier"] = parse_numbers(df, "impact_multiplier", file, problems) \
        if "impact_multiplier" in cols else np.nan
    out["description"] = (parse_text(df, "description", file, problems, required=False) if "description" in cols
                          else None)
    return out


def _campaigns(df: pd.DataFrame, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    cols = list(df.columns)
    schema = SCHEMAS["campaigns"]
    check_unknown(cols, schema.columns, file, problems, "campaigns")
    if check_missing(cols, schema.required, file, problems, "campaigns"):
        return None
    out = pd.DataFrame(index=df.index)
    out["campaign_id"] = (parse_text(df, "campaign_id", file, problems) if "campaign_id" in cols
                          else pd.Series([f"C-{i + 1:05d}" for i in range(len(df))], index=df.index, dtype=object))
    out["channel"] = parse_text(df, "channel", file, problems)
    for c in ("campaign_name", "campaign_type"):
        out[c] = parse_text(df, c, file, problems, required=False) if c in cols else None
    out["start_date"] = parse_dates(df, "start_date", file, problems)
    out["end_date"] = parse_dates(df, "end_date", file, problems, required=False) if "end_date" in cols else pd.NaT
    bad = (out["end_date"] < out["start_date"]).to_numpy()
    for r in row_numbers(bad):
        problems.append(Problem(file, "end_date is before start_date", int(r), "end_date"))
    out["daily_budget"] = parse_numbers(df, "daily_budget", file, problems) if "daily_budget" in cols else np.nan
    for c in ("target_audience", "creative_type"):
        out[c] = parse_text(df, c, file, problems, required=False) if c in cols else None
    check_duplicates(out, ["campaign_id"], file, problems)
    return out.reset_index(drop=True)


def _lift_tests(df: pd.DataFrame, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    cols = list(df.columns)
    schema = SCHEMAS["lift_tests"]
    check_unknown(cols, schema.columns, file, problems, "lift_tests")
    if check_missing(cols, schema.required, file, problems, "lift_tests"):
        return None
    out = pd.DataFrame(index=df.index)
    out["channel"] = parse_text(df, "channel", file, problems)
    out["start_date"] = parse_dates(df, "start_date", file, problems)
    out["end_date"] = parse_dates(df, "end_date", file, problems)
    for r in row_numbers((out["end_date"] < out["start_date"]).to_numpy()):
        problems.append(Problem(file, "end_date is before start_date", int(r), "end_date"))
    out["spend_change"] = parse_numbers(df, "spend_change", file, problems, required=True, non_negative=False)
    for r in row_numbers((out["spend_change"] == 0).to_numpy()):
        problems.append(Problem(file, "spend_change is 0: a test must change the spend", int(r), "spend_change"))
    out["lift"] = parse_numbers(df, "lift", file, problems, required=True, non_negative=False)
    out["se"] = parse_numbers(df, "se", file, problems, required=True)
    for r in row_numbers((out["se"] <= 0).to_numpy()):
        problems.append(Problem(file, "se must be > 0 (the lift's standard error)", int(r), "se"))
    if "measured_until" in cols:
        out["measured_until"] = parse_dates(df, "measured_until", file, problems, required=False)
        for r in row_numbers((out["measured_until"] < out["end_date"]).to_numpy()):
            problems.append(Problem(file, "measured_until is before end_date", int(r), "measured_until"))
    out["name"] = parse_text(df, "name", file, problems, required=False) if "name" in cols else None
    return out.reset_index(drop=True)


def _journeys(df: pd.DataFrame, file: str, kind: str, problems: list[Problem]) -> pd.DataFrame | None:
    try:
        from core.attribution.journeys import validate_journeys, validate_paths
    except ImportError:  # attribution not installed: keep the table as given
        return df
    try:
        return validate_journeys(df) if kind == "journeys" else validate_paths(df)
    except ValueError as e:
        found = getattr(e, "problems", None)
        if not found:
            problems.append(Problem(file, str(e)))
        for p in found or []:
            problems.append(Problem(file, p["problem"], p.get("row"), p.get("column")))
        return None


# --- the whole import -----------------------------------------------------------------------------------------
def _normalise_columns(df: pd.DataFrame, file: str, opts: ImportOptions, problems: list[Problem]) -> pd.DataFrame:
    protected = {normalise_column(c) for c in [opts.kpi_col, *(opts.spend_cols or []), *(opts.control_cols or [])]
                 if c}
    names = []
    for c in df.columns:
        n = normalise_column(c)
        if opts.date_col and n == normalise_column(opts.date_col):
            n = "date"
        elif n not in protected:
            n = ALIASES.get(n, n)
        names.append(n)
    seen: dict[str, str] = {}
    for orig, n in zip(df.columns, names, strict=True):
        if n in seen:
            problems.append(Problem(file, f"columns {seen[n]!r} and {orig!r} both mean {n!r}", None, str(orig)))
        seen.setdefault(n, str(orig))
    out = df.copy()
    out.columns = names
    return out.loc[:, ~out.columns.duplicated()]


def build_dataset(files: list[tuple[str, pd.DataFrame]], options: ImportOptions | None = None,
                  skip_unrecognised: bool = False) -> ImportResult:
    """Validate raw frames (by file name) into canonical tables, or raise ImportRejected listing every problem."""
    opts = options or ImportOptions()
    problems: list[Problem] = []
    warnings: list[str] = []
    notes: list[str] = []
    kinds: dict[str, str] = {}
    parts: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    if not files:
        raise ImportRejected([Problem("(no files)", "nothing to import: give at least one data file")])

    for file, raw in files:
        if raw is None or raw.shape[1] == 0 or len(raw) == 0:
            problems.append(Problem(file, "the file is empty (no data rows)"))
            continue
        df = _normalise_columns(raw, file, opts, problems)
        kind = detect_kind(list(df.columns))
        named_wide = opts.spend_cols and any(normalise_column(c) in df.columns for c in opts.spend_cols)
        wide_roles = opts.kpi_col or opts.control_cols
        if (opts.format == "wide" or wide_roles) and kind in ("kpis", "controls", "wide") or named_wide:
            kind = "wide"
        elif opts.format == "long" and kind == "wide":
            problems.append(Problem(file, "looks like the wide format (spend columns per channel) but --format long "
                                    "was given; the long format needs date, channel and spend columns"))
            continue
        if kind is None:
            if skip_unrecognised:
                notes.append(f"skipped {file}: its columns ({', '.join(map(str, raw.columns))}) are not a known "
                             f"kind of file")
                continue
            problems.append(Problem(file, "cannot tell what this file holds from its columns "
                                    f"({', '.join(map(str, raw.columns))}); expected one of: "
                                    + "; ".join(KIND_DESCRIPTIONS.values())))
            continue
        kinds[file] = kind
        if kind == "marketing":
            t = _marketing(df, file, problems)
            if t is not None:
                parts.setdefault("marketing", []).append((file, t))
        elif kind == "kpis":
            t, c = _kpis(df, file, problems, warnings)
            if t is not None:
                parts.setdefault("kpis", []).append((file, t))
            if c is not None:
                parts.setdefault("controls", []).append((file, c))
        elif kind == "wide":
            m, k, c = _wide(df, file, opts, problems, warnings)
            for name, t in (("marketing", m), ("kpis", k), ("controls", c)):
                if t is not None:
                    parts.setdefault(name, []).append((file, t))
        elif kind == "controls":
            dates = parse_dates(df, "date", file, problems)
            c = _controls_from(df, dates, [x for x in df.columns if x != "date"], file, problems, warnings,
                               explicit=True)
            if c is not None:
                parts.setdefault("controls", []).append((file, c))
        elif kind == "external_factors":
            t = _external(df, file, problems)
            if t is not None:
                parts.setdefault("external_factors", []).append((file, t))
        elif kind == "campaigns":
            t = _campaigns(df, file, problems)
            if t is not None:
                parts.setdefault("campaigns", []).append((file, t))
        elif kind == "lift_tests":
            t = _lift_tests(df, file, problems)
            if t is not None:
                parts.setdefault("lift_tests", []).append((file, t))
        else:
            t = _journeys(df, file, kind, problems)
            if t is not None:
                parts.setdefault("journeys" if kind == "journeys" else "journey_paths", []).append((file, t))

    if "marketing" not in parts and not problems:
        problems.append(Problem(", ".join(f for f, _ in files), "no marketing data: give a long file (date, channel, "
                                "spend, ...) or a wide file (date, revenue, one spend column per channel)"))
    tables = _combine(parts, problems)
    granularity = "day"
    if "marketing" in tables:
        granularity = _check_calendar(tables, parts, problems, warnings)
    for kind in ("campaigns", "lift_tests"):
        if kind in tables and "marketing" in tables:
            known = set(tables["marketing"]["channel"].dropna())
            kind_file = parts[kind][0][0]
            for i, ch in enumerate(tables[kind]["channel"]):
                if isinstance(ch, str) and ch not in known:
                    problems.append(Problem(kind_file, f"channel {ch!r} has no marketing data (known: "
                                            f"{', '.join(sorted(known))})", i + 2, "channel"))
    if problems:
        raise ImportRejected(problems)

    m = tables["marketing"]
    if "kpis" not in tables:
        if m["revenue"].notna().any():
            daily = m.groupby("date", as_index=False)["revenue"].sum(min_count=1)
            tables["kpis"] = daily.assign(orders=np.nan, new_customers=np.nan)
            warnings.append("no KPI file: revenue per date is the sum of the platforms' reported revenue, which "
                            "usually over-counts; import the business's own revenue for a trustworthy model")
        else:
            raise ImportRejected([Problem(", ".join(f for f, _ in files), "no revenue anywhere: add a KPI file "
                                          "(date, revenue) or a revenue column")])
    _fill_channel_dates(tables, granularity, warnings)
    kp = tables["kpis"]
    missing = sorted(set(m["date"]) - set(kp["date"]))
    if missing:
        warnings.append(f"{len(missing)} date(s) have marketing data but no KPI value (first: "
                        f"{missing[0].date()}); the model uses the dates that have both")
    channels = sorted(m["channel"].unique())
    for name, t in tables.items():
        by = [c for c in ("date", "channel", "start_date", "campaign_id") if c in t.columns]
        if by and name not in ("journeys", "journey_paths"):
            tables[name] = t.sort_values(by, kind="stable", ignore_index=True)
    return ImportResult(tables=tables, granularity=granularity, channels=channels, kinds=kinds, warnings=warnings,
                        notes=notes)


def _combine(parts: dict[str, list[tuple[str, pd.DataFrame]]], problems: list[Problem]) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    for name, items in parts.items():
        if name == "controls":
            merged = None
            for _, t in items:
                merged = t if merged is None else merged.merge(t, on="date", how="outer",
                                                               suffixes=("", "_dup"))
            tables[name] = merged
            continue
        t = pd.concat([t for _, t in items], ignore_index=True) if len(items) > 1 else items[0][1]
        if len(items) > 1 and name in ("marketing", "kpis"):
            key = ["date", "channel"] if name == "marketing" else ["date"]
            dup = t.duplicated(key) & t[key].notna().all(axis=1)
            if dup.any():
                files = " and ".join(f for f, _ in items)
                first = t.loc[dup, key].iloc[0]
                problems.append(Problem(files, f"{int(dup.sum())} duplicate {'/'.join(key)} row(s) across files "
                                        f"(first: {', '.join(fmt_value(v) for v in first)})"))
        tables[name] = t
    return tables


def _check_calendar(tables: dict[str, pd.DataFrame], parts: dict[str, list[tuple[str, pd.DataFrame]]],
                    problems: list[Problem], warnings: list[str]) -> str:
    m = tables["marketing"]
    mfile = parts["marketing"][0][0]
    granularity = infer_granularity(m["date"])
    if granularity is None:
        if m["date"].dropna().nunique() < 2:
            problems.append(Problem(mfile, "need at least two dates of marketing data", None, "date"))
        else:
            problems.append(Problem(mfile, "dates are neither daily nor weekly", None, "date"))
        return "day"
    for name in ("marketing", "kpis", "controls"):
        for file, t in parts.get(name, []):
            g = infer_granularity(t["date"])
            if g is not None and g != granularity:
                problems.append(Problem(file, f"dates are {'weekly' if g == 'week' else 'daily'} but the marketing "
                                        f"data is {'weekly' if granularity == 'week' else 'daily'}", None, "date"))
            elif g is not None:
                check_gaps(t["date"], granularity, file, problems)
    return granularity


def _fill_channel_dates(tables: dict[str, pd.DataFrame], granularity: str, warnings: list[str]) -> None:
    """A channel missing some dates inside the data's range had no spend then: fill zeros and say so."""
    m = tables["marketing"]
    all_dates = pd.Index(sorted(m["date"].unique()))
    filled = []
    extra = []
    for ch, g in m.groupby("channel", sort=True):
        missing = all_dates.difference(pd.Index(g["date"]))
        missing = missing[missing > g["date"].min()]  # a channel launched later starts at its first row
        if len(missing):
            filled.append(f"{ch} ({len(missing)})")
            extra.append(pd.DataFrame({"date": missing, "channel": ch, "spend": 0.0}))
    if extra:
        tables["marketing"] = pd.concat([m, *extra], ignore_index=True)
        warnings.append("dates without a row for a channel were filled with zero spend: " + ", ".join(filled))
