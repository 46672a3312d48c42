"""DESIGN.md's layers: a package imports only the packages above it (and shared utilities)."""

from __future__ import annotations

import ast
from pathlib import Path

import kabuto

LAYERS = [
    "data",
    "sim",
    "strategies",
    "backtest",
    "evaluation",
    "hedging",
    "report",
    "experiment",
    "cli",
]
ROOT = Path(kabuto.__file__).parent


def _layer(module: str) -> int | None:
    """Index of the layer a dotted ``kabuto.*`` name belongs to; None for shared modules."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "kabuto" or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, no import)."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith(
            "TYPE_CHECKING"
        ):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path) -> set[str]:
    """The ``kabuto`` modules a file imports at run time (anywhere in it, functions included)."""
    names = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "kabuto" or n.startswith("kabuto.")}


def test_layers_import_only_layers_above_them():
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        module = "kabuto." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        own = _layer(module)
        for name in _imports(path):
            other = _layer(name)
            if own is None and other is not None and not module.endswith("__init__"):
                violations.append(f"{module} (shared) imports {name}")
            elif own is not None and other is not None and other > own:
                violations.append(f"{module} imports {name}")
    assert violations == []


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from kabuto.cli import main\n"
        "def f():\n    from kabuto.report import html\n"
    )
    assert _imports(bad) == {"kabuto.report"}
    assert _layer("kabuto.report.html") > _layer("kabuto.sim.artificial.engine")
