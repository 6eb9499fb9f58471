"""The import service: files in, a validated dataset version out (or every problem listed and nothing written).

Used by ``growthlens import`` and ``POST /api/data/import``. Parsing and validation live in :mod:`core.data`; this
module gathers the files, publishes the tables through :func:`functions.datasets.publish_dataset` (one atomic data
version named by a content hash) and describes the current dataset.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from core.data.importers import ImportOptions, build_dataset, read_frame
from core.data.schemas import ImportRejected, Problem
from functions.datasets import current_version, load_dataset, publish_dataset
from functions.storage import Store

__all__ = ["gather_paths", "import_files", "describe_dataset", "ImportRejected", "ImportOptions", "DATA_SUFFIXES"]

DATA_SUFFIXES = (".csv", ".tsv", ".parquet")


def gather_paths(paths: Iterable[str | Path]) -> tuple[list[tuple[str, bytes]], list[str], bool]:
    """Read the named files; a folder contributes its data files (others are skipped with a note).

    Returns ``(files, notes, from_folder)``; a missing path raises ``ValueError``.
    """
    files: list[tuple[str, bytes]] = []
    notes: list[str] = []
    from_folder = False
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            from_folder = True
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix.lower() in DATA_SUFFIXES:
                    files.append((f.name, f.read_bytes()))
                elif f.is_file():
                    why = "planted truth of the demo, not data" if f.name == "truth.json" else "not a data file"
                    notes.append(f"skipped {f.name}: {why}")
        elif p.is_file():
            files.append((p.name, p.read_bytes()))
        else:
            raise ValueError(f"{raw}: no such file or folder")
    names = [n for n, _ in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two files share the name {', '.join(dup)}; rename one")
    return files, notes, from_folder


def import_files(store: Store, workspace: str, files: list[tuple[str, bytes]], options: ImportOptions | None = None,
                 *, dry_run: bool = False, skip_unrecognised: bool = False, notes: list[str] | None = None,
                 ) -> dict[str, Any]:
    """Validate ``(name, bytes)`` files and publish them as the workspace's new dataset (unless ``dry_run``).

    Raises :class:`ImportRejected` (a ``ValueError``) listing every problem; the store is untouched then.
    """
    frames: list[tuple[str, pd.DataFrame]] = []
    problems: list[Problem] = []
    for name, data in files:
        try:
            frames.append((name, read_frame(name, data)))
        except ImportRejected as e:
            problems.extend(e.problems)
    if problems:
        raise ImportRejected(problems)
    result = build_dataset(frames, options, skip_unrecognised=skip_unrecognised)
    all_notes = [*(notes or []), *result.notes]
    summary: dict[str, Any] = {
        "version": None,
        "dry_run": dry_run,
        "tables": {name: int(len(t)) for name, t in sorted(result.tables.items())},
        "granularity": result.granularity,
        "channels": result.channels,
        "start_date": result.start_date,
        "end_date": result.end_date,
        "files": result.kinds,
        "warnings": result.warnings,
        "notes": all_notes,
    }
    if dry_run:
        return summary
    summary["version"] = publish_dataset(
        store, workspace, result.tables,
        source_files=sorted(result.kinds), file_kinds=result.kinds, granularity=result.granularity,
        channels=result.channels, start_date=result.start_date, end_date=result.end_date,
        warnings=result.warnings, notes=all_notes,
    )
    return summary


def describe_dataset(store: Store, workspace: str) -> dict[str, Any]:
    """The current dataset: version, tables with row counts and columns, date range, channels (NoDataset if none)."""
    pointer = current_version(store, workspace)
    ds = load_dataset(store, workspace)
    tables = {name: {"rows": int(len(t)), "columns": [str(c) for c in t.columns]} for name, t in ds.tables.items()}
    m = ds.table("marketing")
    return {
        "version": ds.version,
        "imported_at": pointer.get("imported_at"),
        "tables": tables,
        "start_date": pd.Timestamp(m["date"].min()).date().isoformat() if len(m) else None,
        "end_date": pd.Timestamp(m["date"].max()).date().isoformat() if len(m) else None,
        "granularity": pointer.get("granularity"),
        "channels": pointer.get("channels") or sorted(map(str, m["channel"].unique())),
        "source_files": pointer.get("source_files", []),
        "warnings": pointer.get("warnings", []),
    }
