"""The core's shape: small modules, one way imports, and no name of a plugin or vendor."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

CORE = Path(__file__).parents[2] / "core"
MODULES = {path.stem: path for path in CORE.glob("*.py") if path.stem != "__init__"}


def imported_siblings(path: Path) -> set[str]:
    """The core modules a module imports when it runs (not those only type checkers read)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.level == 1:
                if inner.module:
                    found.add(inner.module.split(".")[0])
                else:
                    found.update(alias.name for alias in inner.names)
    return found & set(MODULES)


def test_core_has_no_import_cycle() -> None:
    graph = {name: imported_siblings(path) for name, path in MODULES.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:  # pragma: no cover - the failure message is the point
        raise AssertionError(f"import cycle in core: {error.args[1]}") from None
    assert order.index("engine") > order.index("lifecycle")


def test_core_modules_stay_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert sizes["engine"] <= 600, sizes["engine"]
    assert {name: size for name, size in sizes.items() if size > 500 and name != "engine"} == {}


def test_core_names_no_plugin() -> None:
    names = ("capacity_share", "toggle_to_one", "least_occupancy", "weighted_cascade", "off_hours")
    vendors = ("Twilio", "Bright Pattern", "Pega", "LivePerson")
    for name, path in MODULES.items():
        text = path.read_text()
        code = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith(("#", '"'))
        )
        assert not [n for n in names if n in code], name
        assert not [v for v in vendors if v in code], name
