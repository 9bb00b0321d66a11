"""The package's layers (docs/architecture.md), checked on the source: every import, at module level or inside a
function, goes to the same layer or a lower one; no module imports an entry point; no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nir_colorize import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "nir_colorize"
# layer of each module, by its longest matching prefix (docs/architecture.md keeps the same table)
LAYERS = {
    "nir_colorize": 0, "nir_colorize.errors": 0, "nir_colorize.utils": 0, "nir_colorize.offline": 0,
    "nir_colorize.data": 1, "nir_colorize.models": 1, "nir_colorize.metrics": 1,
    "nir_colorize.fusion": 2,
    "nir_colorize.module": 3, "nir_colorize.inference": 3, "nir_colorize.runtime": 3, "nir_colorize.onnx_export": 3,
    "nir_colorize.shipped": 3, "nir_colorize.results": 3, "nir_colorize.testing": 3, "nir_colorize.callbacks": 3,
    "nir_colorize.init_weights": 3, "nir_colorize.video": 3, "nir_colorize.scale": 3,
    "nir_colorize.loading": 4, "nir_colorize.pipeline": 4, "nir_colorize.report": 4, "nir_colorize.bench": 4,
    "nir_colorize.offline.bundle": 4,
    **{f"nir_colorize.{entry}": 5 for entry in ("train", "eval", "predict", "export", "demo", "app")},
}
ENTRY = 5
NAMES = {0: "foundation", 1: "domain", 2: "fusion", 3: "core", 4: "services", 5: "entry point"}


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__``)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``path`` imports anywhere in its code (``from pkg import mod`` is ``pkg.mod``)."""
    def resolve(name: str) -> str:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {resolve(a.name) for a in node.names if a.name.split(".")[0] == "nir_colorize"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "nir_colorize":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else resolve(node.module))
    return found


def layer(module: str) -> int:
    """A ``__main__`` (a command line) is an entry point; else the layer of the longest matching prefix."""
    if module.endswith(".__main__"):
        return ENTRY
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        raise KeyError(module)
    return LAYERS[prefix]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Each import into a higher layer, or into an entry point, as a line."""
    return [f"{m} ({NAMES[layer(m)]}) imports {d} ({NAMES[layer(d)]})" for m, deps in sorted(graph.items())
            for d in sorted(deps) if d != "nir_colorize" and (layer(d) > layer(m) or layer(d) == ENTRY)]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_module_has_a_layer(graph) -> None:
    unplaced = [m for m in graph if not any(m == p or m.startswith(p + ".") for p in LAYERS if p != "nir_colorize")
                and m != "nir_colorize"]
    assert not unplaced, f"place these in LAYERS and docs/architecture.md: {unplaced}"


def test_imports_go_down_and_never_into_an_entry_point(graph) -> None:
    found = upward(graph)
    assert not found, "\n".join(found)


def test_no_import_circles(graph) -> None:
    assert not circles(graph)


def test_the_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    """On a small made-up package: a circle and an upward import are found."""
    pkg = tmp_path / "nir_colorize"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("from nir_colorize.data import b\n")
    (pkg / "data" / "b.py").write_text("def f():\n    from nir_colorize.data.a import x\n    import nir_colorize.eval\n")
    (pkg / "eval.py").write_text("")
    known = modules(pkg)
    small = {name: imports(path, known) - {name} for name, path in known.items()}
    assert circles(small) == [["nir_colorize.data.a", "nir_colorize.data.b"]]
    assert upward(small) == ["nir_colorize.data.b (domain) imports nir_colorize.eval (entry point)"]
