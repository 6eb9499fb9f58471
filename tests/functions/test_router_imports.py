"""Route groups are independent: no module in ``functions/routers/`` imports another router module.

Each group is its own Lambda (template.yaml); what several groups share lives outside the package (services in
``functions/``, dependencies in ``functions/deps.py``), so the check parses every router's imports with ``ast``,
including imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTERS = Path(__file__).resolve().parents[2] / "functions" / "routers"
PACKAGE = "functions.routers"


def router_imports(source: str) -> list[str]:
    """Every import in ``source`` that names a module of the routers package (absolute or relative)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level > 0:  # `from . import x`, `from .optimize import y`: always inside the package
                found.append("." * node.level + module)
            elif module == PACKAGE:  # `from functions.routers import optimize`
                found += [f"{PACKAGE}.{a.name}" for a in node.names]
            elif module.startswith(PACKAGE + "."):
                found.append(module)
    return found


def router_files() -> list[Path]:
    """The router modules (``__init__.py`` aside)."""
    return sorted(p for p in ROUTERS.glob("*.py") if p.name != "__init__.py")


def test_there_are_routers_to_check() -> None:
    names = {p.stem for p in router_files()}
    assert {"optimize", "forecast", "models", "channels", "metrics"} <= names


@pytest.mark.parametrize("path", router_files(), ids=lambda p: p.stem)
def test_router_imports_no_other_router(path: Path) -> None:
    assert router_imports(path.read_text()) == [], f"{path.name} imports another router module"


@pytest.mark.parametrize("source,expected", [
    ("from functions.routers.optimize import model_and_fixed", ["functions.routers.optimize"]),
    ("def f():\n    from functions.routers.metrics import cached\n", ["functions.routers.metrics"]),
    ("import functions.routers.optimize as o", ["functions.routers.optimize"]),
    ("from functions.routers import optimize, models", ["functions.routers.optimize", "functions.routers.models"]),
    ("from .optimize import x", [".optimize"]),
    ("from . import optimize", ["."]),
    ("from functions.mmm_service import get_model\nimport functions.routing", []),
])
def test_the_check_sees_every_form_of_import(source: str, expected: list[str]) -> None:
    assert router_imports(source) == expected
