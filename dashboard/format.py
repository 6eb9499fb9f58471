"""Numbers formatted for business readers: ``$4.7M``, ``$312K``, ``$1,234``, ``3.14x``, ``+12%``.

Every function accepts ``None`` (or NaN) and then returns an em dash, so a missing value never crashes a page.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

DASH = "—"

__all__ = ["money", "money_range", "ratio", "pct", "share", "number", "decimal", "day", "DASH"]


def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _trim(s: str) -> str:
    return s[:-2] if s.endswith(".0") else s


def _compact(v: float) -> str:
    """A non-negative amount in compact form without the currency sign."""
    if v < 10:
        return f"{v:,.2f}" if v != round(v) else f"{v:,.0f}"
    if round(v) < 10_000:
        return f"{v:,.0f}"
    if round(v / 1e3, 1) < 100:
        return _trim(f"{v / 1e3:.1f}") + "K"
    if round(v / 1e3) < 1000:
        return f"{v / 1e3:.0f}K"
    if round(v / 1e6, 1) < 1000:
        return _trim(f"{v / 1e6:.1f}") + "M"
    return _trim(f"{v / 1e9:.1f}") + "B"


def money(x: Any, signed: bool = False) -> str:
    """Currency, compact: ``$1,234``, ``$45.3K``, ``$312K``, ``$4.7M``, ``$1.2B``; cents below $10 (``$0.85``).

    ``signed=True`` adds ``+`` to positive amounts (for changes and opportunities).
    """
    if _missing(x):
        return DASH
    v = float(x)
    sign = "-" if v < 0 and _compact(abs(v)) != "0" else ("+" if signed and v > 0 else "")
    return f"{sign}${_compact(abs(v))}"


def money_range(low: Any, high: Any) -> str:
    """A range of amounts, ``$12K–$26K`` (an em dash when either end is missing)."""
    if _missing(low) or _missing(high):
        return DASH
    return f"{money(low)}–{money(high)}"


def number(x: Any) -> str:
    """A count, compact: ``987``, ``12,345``, ``145K``, ``4.7M``."""
    if _missing(x):
        return DASH
    v = float(x)
    body = _compact(abs(v))
    if abs(v) < 10 and v != round(v):
        body = f"{abs(v):.1f}"
    return ("-" if v < 0 else "") + body


def decimal(x: Any, digits: int = 2) -> str:
    """A plain score with fixed decimals, e.g. a model quality score: 0.7834 → ``0.78``."""
    if _missing(x):
        return DASH
    return f"{float(x):.{digits}f}"


def ratio(x: Any) -> str:
    """A multiple such as ROAS: ``3.14x``."""
    if _missing(x):
        return DASH
    return f"{float(x):.2f}x"


def pct(x: Any, signed: bool = True) -> str:
    """A change given as a fraction (0.12 → ``+12%``, -0.034 → ``-3.4%``); one decimal below 10%."""
    if _missing(x):
        return DASH
    v = float(x) * 100
    body = f"{abs(v):.1f}" if abs(v) < 9.95 else f"{abs(v):,.0f}"
    body = _trim(body)
    if body == "0":
        return "0%"
    sign = "-" if v < 0 else ("+" if signed else "")
    return f"{sign}{body}%"


def share(x: Any) -> str:
    """A share given as a fraction, unsigned: 0.481 → ``48%``."""
    return pct(x, signed=False)


def day(x: Any) -> str:
    """A date as ``Mar 5, 2025``."""
    if x is None:
        return DASH
    if isinstance(x, str):
        try:
            x = date.fromisoformat(x[:10])
        except ValueError:
            return x
    if isinstance(x, datetime):
        x = x.date()
    return f"{x:%b} {x.day}, {x.year}"
