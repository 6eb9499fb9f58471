"""What several route groups share, kept out of ``functions/routers/`` so no router imports another: the response
memo, the descriptions of the common date-range query parameters and the check of per-channel daily amounts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

START_DOC = "First day (YYYY-MM-DD, inclusive); default: 90 days before the end date"
END_DOC = "Last day (YYYY-MM-DD, inclusive); default: the last day of data"
GRAN_DOC = "day | week | month; default: day up to 120 days, week up to two years, else month"

_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_LOCK = threading.Lock()


def cached(key: tuple, compute: Callable[[], Any], size: int = 64) -> Any:
    """Memoise a computed response per (workspace, data version, parameters): warm requests skip the pandas work.

    The data version is part of the key, so a new import never serves stale numbers.
    """
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = compute()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > size:
            _CACHE.popitem(last=False)
    return value


def check_daily_amounts(what: str, amounts: dict[str, float]) -> None:
    """422 naming the channel when one of its daily amounts is negative (or NaN)."""
    for ch, v in amounts.items():
        if not v >= 0:
            raise HTTPException(status_code=422, detail=f"{what}[{ch!r}] must be a non-negative daily amount ({v})")
