"""Lambda package size: what the container image's Python layer weighs, so it cannot silently outgrow the limit.

Installs the project's runtime dependencies (pyproject ``[project.dependencies]``, no extras: no Panel, no test
tools) for Lambda's platform (python3.12, manylinux x86_64) into a temporary folder, the way infra/Dockerfile does,
and measures it per package. Exits non-zero when the image layer would pass Lambda's 10 GB image limit, and reports
against the 250 MB zip limit for reference.

Run: ``nice .venv/bin/python bench/package.py``. Writes bench/results/package.md.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZIP_LIMIT_MB = 250
IMAGE_LIMIT_MB = 10 * 1024


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> int:
    """Install, measure, report."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "site"
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), "--platform",
             "manylinux2014_x86_64", "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
             *deps],
            check=True,
        )
        seconds = time.perf_counter() - t0
        code_mb = _size_mb(ROOT / "core") + _size_mb(ROOT / "functions")
        per_pkg: dict[str, float] = {}
        for child in target.iterdir():
            if child.is_dir() and not child.name.endswith((".dist-info", "__pycache__")):
                name = child.name.rstrip("_").split(".")[0].lower()
                per_pkg[name] = per_pkg.get(name, 0.0) + _size_mb(child)
        total = _size_mb(target) + code_mb
    top = sorted(per_pkg.items(), key=lambda kv: -kv[1])[:10]
    print(f"runtime dependencies for python3.12 manylinux x86_64: {total:,.0f} MB with core/ and functions/ "
          f"({code_mb:.1f} MB of our code); installed in {seconds:.0f} s")
    for name, mb in top:
        print(f"  {name:20s} {mb:8.1f} MB")
    lines = [
        "## Lambda package size",
        "",
        "The container image's Python layer (`infra/Dockerfile`): the runtime dependencies of `pyproject.toml`",
        "installed for python3.12 manylinux x86_64, plus `core/` and `functions/`. No Panel, no test tools.",
        "",
        "| what | size |",
        "|---|---:|",
        f"| total (dependencies + our code) | {total:,.0f} MB |",
        f"| our code (`core/`, `functions/`) | {code_mb:.1f} MB |",
        *[f"| {name} | {mb:,.0f} MB |" for name, mb in top],
        "",
        f"Limits: container image {IMAGE_LIMIT_MB / 1024:.0f} GB (used {total / IMAGE_LIMIT_MB:.0%}); a zip package "
        f"would allow {ZIP_LIMIT_MB} MB unzipped, which this stack {'fits' if total <= ZIP_LIMIT_MB else 'exceeds'} "
        "— hence container images.",
        "",
        "Reproduce: `nice .venv/bin/python bench/package.py` (fails when the image limit would be passed).",
        "",
    ]
    out = ROOT / "bench" / "results" / "package.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if total <= IMAGE_LIMIT_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
