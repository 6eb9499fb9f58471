"""``growthlens demo NAME --out DIR``: write a synthetic demo data set (with its planted truth) to a folder.

Demo generators are discovered: every module ``core/demo/<name>.py`` that defines ``write_<name>(out_dir, ...)``
becomes ``growthlens demo <name>``. Its keyword parameters with simple defaults (``seed=42``, ``journeys=20000``,
``customers=10000``) become options (``--seed``, ``--journeys``, ``--customers``), read from the source without
importing the generator, so the command line starts fast.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import core.demo as _demo_pkg

_TYPES = {"int": int, "float": float, "str": str}
_HELP = {"seed": "random seed: same seed, same data", "journeys": "number of customer journeys (0: none)",
         "customers": "number of customers"}


def discover() -> dict[str, list[tuple[str, type, Any]]]:
    """Demo names and their simple keyword options ``(name, type, default)``, from ``core/demo/*.py`` sources."""
    found: dict[str, list[tuple[str, type, Any]]] = {}
    for info in sorted(pkgutil.iter_modules(_demo_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        path = Path(next(iter(_demo_pkg.__path__))) / f"{info.name}.py"
        try:
            tree = ast.parse(path.read_text())
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == f"write_{info.name}":
                found[info.name] = _options(node)
    return found


def _options(fn: ast.FunctionDef) -> list[tuple[str, type, Any]]:
    args = fn.args.args[1:] + fn.args.kwonlyargs  # skip out_dir
    defaults: list[ast.expr | None] = [None] * (len(fn.args.args) - len(fn.args.defaults)) + list(fn.args.defaults)
    defaults = defaults[1:] + list(fn.args.kw_defaults)
    opts = []
    for a, d in zip(args, defaults, strict=True):
        if d is None or not isinstance(d, ast.Constant) or d.value is None or isinstance(d.value, bool):
            continue
        tname = type(d.value).__name__
        if tname in _TYPES:
            opts.append((a.arg, _TYPES[tname], d.value))
    return opts


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo`` with one subcommand per discovered generator."""
    p = sub.add_parser("demo", help="write a synthetic demo data set (CSV files + truth.json) to a folder",
                       description="Generate a seeded synthetic data set with known ground truth (truth.json).")
    demos = p.add_subparsers(dest="demo", metavar="NAME")
    for name, options in discover().items():
        d = demos.add_parser(name, help=f"the {name} demo data set",
                             description=f"Write the {name} demo data set to --out (deterministic for --seed).")
        d.add_argument("--out", required=True, help="output folder (created)")
        for opt, typ, default in options:
            what = _HELP.get(opt, opt.replace("_", " "))
            d.add_argument(f"--{opt.replace('_', '-')}", dest=opt, type=typ, default=default,
                           help=f"{what} (default: {default})")
        d.set_defaults(func=run, demo=name, demo_options=[o for o, _, _ in options])
    p.set_defaults(func=_missing_name, demo_parser=p, demo_names=sorted(demos.choices))


def _missing_name(args: argparse.Namespace) -> int:
    raise ValueError(f"name a demo data set: growthlens demo {{{','.join(args.demo_names)}}} --out DIR")


def run(args: argparse.Namespace) -> int:
    """Generate and write the demo, then say what was written."""
    module = importlib.import_module(f"core.demo.{args.demo}")
    writer = getattr(module, f"write_{args.demo}")
    kwargs = {o: getattr(args, o) for o in args.demo_options}
    out = Path(args.out)
    written = writer(out, **kwargs)
    print(f"wrote the {args.demo} demo data to {out}")
    if isinstance(written, dict):
        for name, path in written.items():
            print(f"  {name}: {path}")
    return 0
