"""JSON for analytics results: numpy scalars and arrays, pandas timestamps and dates become plain JSON values."""

from __future__ import annotations

from typing import Any


def json_default(o: Any) -> Any:
    """``json.dumps(..., default=json_default)``: dates as ISO text, numpy scalars/arrays as numbers/lists."""
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def plain(x: Any) -> Any:
    """Plain Python values (dict with text keys, list, bool, int, float) from nested numpy-bearing containers."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    if hasattr(x, "tolist") and hasattr(x, "ndim"):  # numpy arrays and scalars
        return plain(x.tolist()) if x.ndim else x.item()
    return x
