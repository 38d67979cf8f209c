"""The house rule, enforced: packages in data-flow order, each importing only the ones before it.

The static import graph of ``src/archcast`` is read with :mod:`ast`: every ``import`` counts, the
lazy ones inside functions too; only ``if TYPE_CHECKING:`` blocks are skipped (they never run).
The test fails on any cycle between modules, any cycle between top-level packages, and any import
that points up the layer order. ``LAYERS`` is the order (README, "Where things live").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "archcast"

# bottom -> top; a unit may import units of its own layer index or lower
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_version"),
    ("registry", "metrics", "_torch"),
    ("graph",),
    ("frontends",),
    ("tokenizer",),
    ("models",),
    ("train",),
    ("predictors",),
    ("zoo",),
    ("profile",),
    ("store",),
    ("data",),
    ("collect",),
    ("service",),
    ("adapt",),
    ("bench",),
    ("__init__",),  # the package facade: archcast.predict(), __version__
    ("cli",),
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


# ------------------------------------------------------------------------------ the import graph
def module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """``(imported module, names)`` for every import statement outside TYPE_CHECKING blocks."""
    out: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [a.name for a in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """``module -> archcast modules it imports`` (``from pkg import mod`` resolves to the module)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, names in _imports(tree, mod, path.name == "__init__.py"):
            if target != "archcast" and not target.startswith("archcast."):
                continue
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in files]
            for t in hits or [target]:
                while t not in files and "." in t:  # a name inside a module: the module
                    t = t.rsplit(".", 1)[0]
                if t in files and t != mod:
                    graph[mod].add(t)
    return graph


def unit_of(module: str) -> str:
    """The layer unit of a module: its top-level package or root module (``archcast`` itself is
    ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(old)
    return sorted(out)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, targets in graph.items():
        a = unit_of(m)
        out.setdefault(a, set()).update(unit_of(t) for t in targets if unit_of(t) != a)
    return out


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, targets in sorted(graph.items()):
        for t in sorted(targets):
            a, b = unit_of(m), unit_of(t)
            if a != b and LAYER_OF[b] > LAYER_OF[a]:
                bad.append(f"{m} -> {t} ({a} is layer {LAYER_OF[a]}, {b} is layer {LAYER_OF[b]})")
    return bad


# ------------------------------------------------------------------------------ the rules
GRAPH = import_graph()


def test_every_unit_has_a_layer():
    missing = sorted({unit_of(m) for m in GRAPH} - set(LAYER_OF))
    assert not missing, f"add these packages/modules to LAYERS: {missing}"


def test_no_module_cycle():
    assert cycles(GRAPH) == []


def test_no_package_cycle():
    assert cycles(package_graph(GRAPH)) == []


def test_no_import_points_up_the_layers():
    assert upward_imports(GRAPH) == []


def test_nothing_in_the_library_imports_the_cli():
    users = sorted(m for m, ts in GRAPH.items() if unit_of(m) != "cli" and any(unit_of(t) == "cli" for t in ts))
    assert users == []


def test_no_source_file_over_600_lines():
    long = sorted(f"{p.relative_to(SRC)}: {n}" for p in SRC.rglob("*.py")
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600)
    assert long == []


# ------------------------------------------------------------------------------ the checker itself
def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "archcast" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "archcast"


def test_checker_finds_a_lazy_cycle_and_an_upward_import(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "graph/__init__.py": "",
        "graph/ir.py": "def f():\n    from archcast.cli import main\n",
        "cli/__init__.py": "from archcast.graph import ir\n",
    })
    g = import_graph(root)
    assert g["archcast.graph.ir"] == {"archcast.cli"}
    assert g["archcast.cli"] == {"archcast.graph.ir"}
    assert cycles(g) == [["archcast.cli", "archcast.graph.ir"]]
    assert upward_imports(g) == ["archcast.graph.ir -> archcast.cli (graph is layer 2, cli is layer 17)"]


def test_checker_skips_type_checking_and_resolves_relative_imports(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "store/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from archcast.cli import x\n",
        "store/a.py": "from . import b\nfrom .b import thing\n",
        "store/b.py": "thing = 1\n",
    })
    g = import_graph(root)
    assert g["archcast.store"] == set()
    assert g["archcast.store.a"] == {"archcast.store.b"}


@pytest.mark.parametrize("unit,layer", [("graph", 2), ("cli", len(LAYERS) - 1), ("errors", 0)])
def test_layer_order_is_as_documented(unit, layer):
    assert LAYER_OF[unit] == layer
