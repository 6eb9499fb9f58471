"""Limits on untrusted input, checked before parsing: JSON nesting depth and non-finite numbers.

``json.loads`` recurses once per nesting level, so ``[`` × 50,000 raises ``RecursionError`` (a 500) instead of a
clear 4xx; and Python's JSON accepts ``NaN``/``Infinity``, which no request needs. :func:`check_json` scans the
text in C speed (regular expressions and NumPy, no Python loop per character) and raises ``ValueError`` naming the
problem.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["MAX_JSON_DEPTH", "json_depth", "check_json"]

MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NON_FINITE = re.compile(rb"(?<![A-Za-z0-9_])-?(?:NaN|Infinity)(?![A-Za-z0-9_])")


def _bare(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return _STRING.sub(b'""', raw)  # strings may hold brackets and the words NaN/Infinity


def _depth(bare: bytes) -> int:
    arr = np.frombuffer(bare, dtype=np.uint8)
    if not len(arr):
        return 0
    step = np.zeros(len(arr), dtype=np.int32)
    step[(arr == ord("[")) | (arr == ord("{"))] = 1
    step[(arr == ord("]")) | (arr == ord("}"))] = -1
    return int(np.cumsum(step).max())


def json_depth(data: bytes | str) -> int:
    """Greatest nesting depth of the JSON (or NDJSON) text ``data``, strings ignored."""
    return _depth(_bare(data))


def check_json(data: bytes | str, what: str = "the JSON body", max_depth: int = MAX_JSON_DEPTH) -> None:
    """``ValueError`` when ``data`` nests deeper than ``max_depth`` or holds NaN/Infinity."""
    bare = _bare(data)
    depth = _depth(bare)
    if depth > max_depth:
        raise ValueError(f"{what} nests {depth} levels deep; at most {max_depth} are accepted")
    m = _NON_FINITE.search(bare)
    if m:
        raise ValueError(f"{what} holds the non-finite number {m.group().decode()}: only finite numbers are "
                         "accepted")
