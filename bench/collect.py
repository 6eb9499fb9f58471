"""Collect the latest benchmark results (bench/results/*.md) into docs/benchmarks.md with the machine they ran on.

Each benchmark script writes its own fragment to ``bench/results/<name>.md``; this script stitches them together
so that docs/benchmarks.md always shows the latest figures and the machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["overview", "mmm", "mmm_worlds", "optimize", "simulate", "attribution", "attribution_worlds", "cdp",
         "cdp_concurrency", "cdp_scale", "segments", "predictions", "ltv_worlds", "predictions_store", "identity",
         "package"]


def machine() -> str:
    """A one-paragraph description of this machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; collected {datetime.now(UTC):%Y-%m-%d} at commit {commit}.")


def main() -> None:
    """Write docs/benchmarks.md from the fragments."""
    frags = {p.stem: p.read_text().strip() for p in sorted((ROOT / "bench" / "results").glob("*.md"))}
    names = [n for n in ORDER if n in frags] + sorted(set(frags) - set(ORDER))
    parts = [
        "# Benchmarks",
        "",
        "Latest figures from the scripts in `bench/` (each prints its figures and writes `bench/results/<name>.md`; "
        "`python bench/collect.py` stitches them here). Timings are wall-clock on a shared, noisy machine: read "
        "them as orders of magnitude. Unit tests never assert timings.",
        "",
        f"**Machine:** {machine()}",
        "",
    ]
    for n in names:
        parts += [frags[n], ""]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts))
    print(f"wrote docs/benchmarks.md ({', '.join(names) or 'no results yet'})")


if __name__ == "__main__":
    main()
