"""``growthlens import PATH...``: validate data files and make them the workspace's dataset.

PATH may be files or folders (a folder contributes its CSV/TSV/Parquet files; e.g. a demo folder). Every problem is
listed with its file, row and column, and nothing is written unless the whole import is valid.
"""

from __future__ import annotations

import argparse
import os

from functions.importing import ImportOptions, gather_paths, import_files
from functions.storage import store_from_env


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` command."""
    p = sub.add_parser(
        "import", help="import data files (or a folder of them) as the current dataset",
        description="Recognise each file by its columns (long marketing data, KPIs, external factors, campaigns, "
        "journeys, controls, or the wide format: date, revenue and one spend column per channel), validate "
        "everything and publish it atomically as a new data version.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="data files or folders")
    p.add_argument("--kpi-col", help="wide format: the KPI column (default: revenue)")
    p.add_argument("--spend-cols", type=_csv, help="wide format: comma-separated spend columns")
    p.add_argument("--control-cols", type=_csv, help="wide format: comma-separated control columns")
    p.add_argument("--date-col", help="the date column when it is not called 'date'")
    p.add_argument("--format", choices=["long", "wide"], help="expected layout (default: recognised per file)")
    p.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    p.add_argument("--workspace", default=os.environ.get("GROWTHLENS_WORKSPACE", "default"),
                   help="workspace (default: $GROWTHLENS_WORKSPACE or %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import and print a summary (problems raise ValueError: exit code 2 with the list)."""
    files, notes, from_folder = gather_paths(args.paths)
    options = ImportOptions(kpi_col=args.kpi_col, spend_cols=args.spend_cols, control_cols=args.control_cols,
                            date_col=args.date_col, format=args.format)
    store = store_from_env()
    result = import_files(store, args.workspace, files, options, dry_run=args.dry_run,
                          skip_unrecognised=from_folder, notes=notes)
    head = "valid (dry run, nothing written)" if args.dry_run else f"imported data version {result['version']}"
    granularity = {"day": "daily", "week": "weekly"}.get(result["granularity"], result["granularity"])
    print(f"{head}: {granularity} data {result['start_date']} to {result['end_date']}, "
          f"channels: {', '.join(result['channels'])}")
    for name, kind in sorted(result["files"].items()):
        print(f"  {name}: {kind}")
    print("  tables: " + ", ".join(f"{t} ({n} rows)" for t, n in result["tables"].items()))
    for w in result["warnings"]:
        print(f"  warning: {w}")
    for n in result["notes"]:
        print(f"  note: {n}")
    return 0
