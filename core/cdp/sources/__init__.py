"""Source adapters: each tool's webhook payloads and exports → canonical :class:`~core.cdp.events.Event` lists.

Every adapter module (``shopify``, ``klaviyo``, ``ga4``, ``gorgias``, ``recharge``) exposes:

- ``parse(payload: dict, topic: str | None = None) -> list[Event]`` for one webhook payload or one export record;
  a malformed payload raises ``ValueError`` naming the missing or invalid field;
- ``parse_export(rows, topic=None) -> ExportResult``: many records, bad ones rejected one by one with reasons;
- ``verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> bool``;
- ``SIGNATURE_SCHEME``: one line describing how requests are signed (shown in the docs and error messages).

:func:`read_rows` turns an export body (JSON array, a JSON object wrapping a list, NDJSON or CSV) into records.
"""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from core.cdp.events import Event
from core.cdp.limits import check_json

__all__ = ["SOURCES", "ExportResult", "adapter", "read_rows", "iter_row_chunks", "RawLines", "parse_rows", "header"]

SOURCES: tuple[str, ...] = ("shopify", "klaviyo", "ga4", "gorgias", "recharge")


@dataclass
class ExportResult:
    """Events parsed from many records, and the records rejected with the reason (index in the input)."""

    events: list[Event] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    received: int = 0


def adapter(source: str) -> ModuleType:
    """The adapter module of ``source`` (``ValueError`` listing the known sources otherwise)."""
    name = (source or "").strip().lower()
    if name not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known sources: {', '.join(SOURCES)}")
    return importlib.import_module(f"core.cdp.sources.{name}")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup."""
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def parse_rows(parse: Callable[[dict, str | None], list[Event]], rows: Iterable[Any],
               topic: str | None = None, start: int = 0) -> ExportResult:
    """Parse each record with ``parse``; a bad record is rejected with its reason, the others still load.
    ``start``: the index of the first row in the whole export (rows read in chunks keep their numbers)."""
    out = ExportResult()
    raw = isinstance(rows, RawLines)
    for i, row in enumerate(rows, start):
        out.received += 1
        if raw:  # an NDJSON line read but not yet decoded (decoded here, i.e. in a worker for big files)
            try:
                row = json.loads(row)
            except json.JSONDecodeError as e:
                out.rejected.append((i, f"record {i}: invalid JSON ({e.msg} at column {e.colno})"))
                continue
        if not isinstance(row, dict):
            out.rejected.append((i, f"record {i}: expected a JSON object, got {type(row).__name__}"))
            continue
        try:
            out.events.extend(parse(row, topic))
        except ValueError as e:
            out.rejected.append((i, f"record {i}: {e}"))
    return out


_WRAPPERS = ("orders", "customers", "profiles", "events", "tickets", "subscriptions", "charges", "data", "rows",
             "records", "items")


def read_rows(body: bytes | str, content_type: str | None = None) -> list[Any]:
    """Records of an export body: a JSON array, a JSON object wrapping one (``{"orders": [...]}``, ``{"data":
    [...]}``), newline-delimited JSON, or CSV with a header row (dotted column names such as ``customer.email``
    become nested objects)."""
    text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        raise ValueError("the request body is empty")
    ctype = (content_type or "").lower()
    if "csv" in ctype or (not stripped.startswith(("[", "{")) and "json" not in ctype):
        return _read_csv(stripped)
    check_json(stripped, "the request body")
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON array at line {e.lineno}, column {e.colno}: {e.msg}") from e
        return list(data)
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        rows = []
        for n, line in enumerate(stripped.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"invalid JSON on line {n} of the NDJSON body: {e.msg}") from e
        return rows
    if isinstance(data, dict):
        for key in _WRAPPERS:
            if isinstance(data.get(key), list):
                return list(data[key])
        return [data]
    raise ValueError("expected a JSON object or array")


def _read_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ValueError("the CSV body has no header row")
    return [_nest(r) for r in reader]


class RawLines(list):
    """A chunk of NDJSON lines (blank lines removed), not yet decoded: :func:`parse_rows` decodes each one."""

    __slots__ = ()


def iter_row_chunks(path: str | Path, content_type: str | None = None, chunk_rows: int = 100_000,
                    raw_lines: bool = False) -> Iterator[list[Any]]:
    """Records of an export *file* in lists of at most ``chunk_rows``, so that an export of any size loads in
    bounded memory: NDJSON and CSV are read line by line; a JSON array or wrapped JSON (one document) is read
    whole. Same formats as :func:`read_rows`. ``raw_lines``: NDJSON chunks come as :class:`RawLines` (decoded by
    :func:`parse_rows`, where a bad line is a rejected record); otherwise a bad line raises ``ValueError`` naming
    the file line."""
    path = Path(path)
    ctype = (content_type or "").lower()
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        head = ""
        while True:  # the first non-blank character tells JSON from CSV
            ch = f.read(1)
            if not ch or not ch.isspace():
                head = ch
                break
        if not head:
            raise ValueError(f"{path.name} is empty")
        f.seek(0)
        if path.suffix.lower() == ".csv" or "csv" in ctype or head not in "[{":
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise ValueError(f"{path.name}: the CSV has no header row")
            yield from _chunks((_nest(r) for r in reader), chunk_rows)
            return
        if head == "[" or path.suffix.lower() == ".json":
            yield from _chunks(read_rows(f.read(), "application/json"), chunk_rows)
            return
        first = f.readline()
        try:
            json.loads(first)
        except json.JSONDecodeError:  # not one object per line: one (possibly pretty-printed) JSON document?
            f.seek(0)
            try:
                rows = read_rows(f.read(), "application/json")
            except ValueError:
                rows = None  # neither: NDJSON whose first line is broken
            if rows is not None:
                yield from _chunks(rows, chunk_rows)
                return
        f.seek(0)
        if raw_lines:  # read in C-sized steps; decoding (the costly part) is left to parse_rows
            while True:
                block = list(itertools.islice(f, chunk_rows))
                if not block:
                    return
                lines = RawLines(line for line in block if line.strip())
                if lines:
                    yield lines

        def lines() -> Iterator[Any]:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path.name}: invalid JSON on line {n}: {e.msg}") from e

        yield from _chunks(lines(), chunk_rows)


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for r in rows:
        buf.append(r)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _nest(r: dict[str | None, Any]) -> dict[str, Any]:
    """A CSV row with dotted column names (``customer.email``) as a nested object; empty cells dropped."""
    obj: dict[str, Any] = {}
    for k, v in r.items():
        if k is None or v in (None, ""):
            continue
        cur = obj
        parts = k.strip().split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return obj
