"""The ``growthlens`` command line.

Subcommands are discovered: every module in ``functions/cli/`` that defines ``register(subparsers)`` adds its
commands (``serve``, ``demo``, ``import``, ``mmm``, ``attribution``, ``cdp``, ...). Each registered parser sets
``func`` (called with the parsed args; returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import functions.cli as _pkg


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="growthlens",
        description="Growthlens: marketing mix modeling, attribution and customer data for DTC brands.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_pkg.__path__), key=lambda m: m.name):
        if info.name in {"main"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"functions.cli.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``growthlens`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ValueError as e:  # bad input: one clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
