"""Canonical tables of a Growthlens marketing dataset, and how input files are recognised.

Every import ends in these tables (any subset; ``marketing`` required):

* ``marketing`` — long format, one row per (date, channel): spend and the platform's own metrics. ``revenue`` here
  is what the ad platform *reports* (it over-claims); the business's true revenue lives in ``kpis``.
* ``kpis`` — one row per date: the business's revenue, orders, new customers.
* ``external_factors`` — dated events: holidays, shopping events, promotions, platform changes.
* ``campaigns`` — campaign metadata per channel.
* ``controls`` — one row per date with numeric control variables (price index, competitor activity, ...).
* ``journeys`` — touch-level customer journeys for multi-touch attribution.
* ``lift_tests`` — experiments: a channel's spend changed by a known amount per day over a window, and the
  incremental revenue measured with its standard error; they calibrate the marketing mix model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TableSchema",
    "SCHEMAS",
    "MARKETING_METRICS",
    "Problem",
    "ImportRejected",
    "normalise_column",
    "detect_kind",
    "spend_column_channel",
    "is_spend_column",
    "KIND_DESCRIPTIONS",
]


@dataclass(frozen=True)
class TableSchema:
    """Columns of a canonical table: required ones, optional ones (filled when absent) and the unique key."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


MARKETING_METRICS = ("impressions", "clicks", "conversions", "revenue", "new_customers", "returning_customers")

SCHEMAS: dict[str, TableSchema] = {
    "marketing": TableSchema(
        "marketing", ("date", "channel", "spend"), MARKETING_METRICS, key=("date", "channel"),
        numeric=("spend", *MARKETING_METRICS), dates=("date",)),
    "kpis": TableSchema(
        "kpis", ("date", "revenue"), ("orders", "new_customers"), key=("date",),
        numeric=("revenue", "orders", "new_customers"), dates=("date",)),
    "external_factors": TableSchema(
        "external_factors", ("date", "factor_type", "factor_name"), ("impact_multiplier", "description"),
        numeric=("impact_multiplier",), dates=("date",)),
    "campaigns": TableSchema(
        "campaigns", ("channel", "start_date"),
        ("campaign_id", "campaign_name", "campaign_type", "end_date", "daily_budget", "target_audience",
         "creative_type"),
        key=("campaign_id",), numeric=("daily_budget",), dates=("start_date", "end_date")),
    "lift_tests": TableSchema(
        "lift_tests", ("channel", "start_date", "end_date", "spend_change", "lift", "se"), ("measured_until", "name"),
        numeric=("spend_change", "lift", "se"), dates=("start_date", "end_date", "measured_until")),
}

KIND_DESCRIPTIONS = {
    "marketing": "long marketing data (date, channel, spend, optional impressions/clicks/conversions/revenue/...)",
    "kpis": "daily or weekly KPIs (date, revenue, optional orders/new_customers)",
    "external_factors": "external factors (date, factor_type, factor_name, impact_multiplier, description)",
    "campaigns": "campaigns (campaign_id, channel, campaign_name, campaign_type, start_date, end_date, ...)",
    "lift_tests": "lift tests (channel, start, end, spend_change per day, lift, se)",  # start/end: date aliases
    "journeys": "customer journeys (journey_id, timestamp, channel, converted, revenue)",
    "paths": "aggregated journey paths (path, conversions, revenue)",
    "wide": "wide format (date, revenue, one spend column per channel, optional controls)",
    "controls": "controls (date and numeric columns)",
}

# common spellings in exports → canonical names (after normalise_column)
ALIASES: dict[str, str] = {
    "day": "date", "ds": "date", "week": "date", "date_start": "date", "reporting_date": "date",
    "source": "channel", "medium": "channel", "platform": "channel", "media_channel": "channel",
    "cost": "spend", "amount_spent": "spend", "ad_spend": "spend", "media_spend": "spend",
    "sales": "revenue", "conversion_value": "revenue", "conv_value": "revenue", "total_revenue": "revenue",
    "purchases": "conversions", "transactions": "orders", "new_customer": "new_customers",
    "id": "campaign_id", "campaign": "campaign_name", "type": "campaign_type", "budget": "daily_budget",
    "start": "start_date", "end": "end_date", "audience": "target_audience", "creative": "creative_type",
    "event": "factor_name", "event_name": "factor_name", "event_type": "factor_type", "multiplier": "impact_multiplier",
}


def normalise_column(name: Any) -> str:
    """Lower-case, trimmed, spaces and punctuation as underscores: ``"Amount Spent (USD)"`` → ``amount_spent_usd``."""
    s = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")
    return s


_SPEND_RE = re.compile(r"^(?:spend|cost)_(.+)$|^(.+?)_(?:spend|cost|costs|investment)(?:_usd|_eur)?$")


def is_spend_column(name: str) -> bool:
    """Whether a (normalised) column name reads as a channel's spend: ``google_spend``, ``spend_google``, ``x_cost``."""
    return bool(_SPEND_RE.match(normalise_column(name)))


_KNOWN_CHANNELS = {
    "google": "Google Ads", "google_ads": "Google Ads", "adwords": "Google Ads", "search": "Search",
    "meta": "Meta Ads", "meta_ads": "Meta Ads", "facebook": "Meta Ads", "fb": "Meta Ads",
    "tiktok": "TikTok", "tik_tok": "TikTok", "email": "Email", "affiliate": "Affiliate", "tv": "TV",
}


def spend_column_channel(name: str) -> str:
    """The channel a spend column stands for: ``google_spend`` → ``Google Ads``, ``spend_radio`` → ``Radio``."""
    norm = normalise_column(name)
    m = _SPEND_RE.match(norm)
    stem = (m.group(1) or m.group(2)) if m else norm
    if stem in _KNOWN_CHANNELS:
        return _KNOWN_CHANNELS[stem]
    words = stem.split("_")
    if len(words) == 1 and len(stem) <= 3:
        return stem.upper()  # tv, ooh, sms, ctv
    return " ".join(w if i and w in _SMALL_WORDS else w.capitalize() for i, w in enumerate(words))


_SMALL_WORDS = {"of", "and", "the", "to", "on", "in"}


@dataclass
class Problem:
    """One thing wrong with the input: which file, row (CSV line, header = 1), column and what."""

    file: str
    problem: str
    row: int | None = None
    column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "problem": self.problem}

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.problem}"


MAX_LISTED = 200


class ImportRejected(ValueError):
    """The input was rejected; ``problems`` lists every problem found (nothing was written)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        n = len(self.problems)
        files = sorted({p.file for p in self.problems})
        head = f"import rejected: {n} problem{'s' if n != 1 else ''} in {', '.join(files)}"
        lines = [f"  - {p}" for p in self.problems[:MAX_LISTED]]
        if n > MAX_LISTED:
            lines.append(f"  ... and {n - MAX_LISTED} more")
        return "\n".join([head, *lines])

    def __str__(self) -> str:
        return self.message


def detect_kind(columns: list[str]) -> str | None:
    """What a file holds, judged by its normalised column names (None when it is not recognisable)."""
    cols = set(columns)
    if {"channel", "spend_change", "lift"} <= cols:
        return "lift_tests"
    if {"journey_id", "timestamp", "channel"} <= cols:
        return "journeys"
    if {"path", "conversions"} <= cols:
        return "paths"
    if "channel" in cols and ("start_date" in cols or "campaign_id" in cols or "campaign_name" in cols):
        return "campaigns"
    if "date" in cols and cols & {"factor_type", "factor_name", "is_holiday", "holiday_name"}:
        return "external_factors"
    if {"date", "channel"} <= cols and "spend" in cols:
        return "marketing"
    if "date" in cols and "channel" not in cols and any(is_spend_column(c) for c in cols):
        return "wide"
    if {"date", "revenue"} <= cols and "channel" not in cols:
        return "kpis"
    if "date" in cols and "channel" not in cols and len(cols) > 1:
        return "controls"
    return None
