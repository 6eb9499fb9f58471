"""Generate the demo data sets and load them into a deployed Growthlens bucket.

Usage::

    python infra/upload_demo.py --bucket BUCKET [--workspace default] [--prefix ""] [--out /tmp/growthlens-demo]

It runs the same import (and CDP sync) paths as ``growthlens import`` / ``growthlens sync``, with the store pointed
at S3 (``GROWTHLENS_BUCKET``), so the bucket ends up exactly as a local run's data folder would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Generate demo data locally and import it into the bucket."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bucket", required=True, help="the stack's DataBucketName output")
    ap.add_argument("--workspace", default="default")
    ap.add_argument("--prefix", default="", help="optional key prefix inside the bucket")
    ap.add_argument("--out", default="/tmp/growthlens-demo", help="where to write the generated files first")
    ap.add_argument("--skip-customers", action="store_true", help="only the marketing (TechStyle) data set")
    args = ap.parse_args(argv)
    env = {**os.environ, "GROWTHLENS_BUCKET": args.bucket, "GROWTHLENS_S3_PREFIX": args.prefix,
           "GROWTHLENS_WORKSPACE": args.workspace}
    out = Path(args.out)

    def cli(*a: str) -> None:
        print("$ growthlens", " ".join(a), flush=True)
        subprocess.run([sys.executable, "-m", "functions.cli.main", *a], env=env, check=True)

    cli("demo", "techstyle", "--out", str(out / "techstyle"))
    cli("import", str(out / "techstyle"))
    if not args.skip_customers:
        cli("demo", "glowbeauty", "--out", str(out / "glowbeauty"))
        cli("sync", str(out / "glowbeauty"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
