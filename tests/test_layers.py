"""The import direction of skymagic's layers, read from the source with `ast`.

Layers, low to high (ARCHITECTURE.md): errors and pure functions -> credentials and config ->
the per-context client -> targets and fan-out -> operations -> presentation. A module imports
only its own layer or lower ones, and there are no import cycles. The simulator stands apart:
it imports nothing of the product but the error tree (it is the yardstick the product is tested
against), and only the CLI and the demo may start it.

Every import counts: module level, inside functions, and under `if TYPE_CHECKING:` (a type name
from a higher layer is still a dependency on it). Every module must be classified in LAYERS, so a
new module cannot slip in unclassified.

Known violations that other work on issue 11 is removing are listed in KNOWN_* with the reason.
Each listed violation must still exist: when one is fixed the test fails until its entry is
removed, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skymagic"
SIM = -1  # the simulator's own "layer": outside the product's ladder

# module (or "prefix.*" for a whole package's submodules) -> layer
LAYERS: dict[str, int] = {
    # 0: the error tree and pure functions over plain data
    "skymagic.errors": 0,
    "skymagic.gpus.accelerators": 0,
    "skymagic.gpus.quantity": 0,
    "skymagic.gpus.counting": 0,
    "skymagic.gpus.render": 0,
    "skymagic.gpus.live": 0,
    "skymagic.gpus.wire": 0,
    "skymagic.core": 0,  # package docstring only; re-exporting from it would raise its layer
    "skymagic.gpus": 0,  # package docstring only, as above
    # 1: credentials and config
    "skymagic.core.entries": 1,
    "skymagic.core.kubeconfig_parse": 1,
    "skymagic.core.kubeconfig": 1,
    "skymagic.core.execplugin": 1,
    "skymagic.core.flatten": 1,
    "skymagic.core.auth": 1,
    "skymagic.core.config": 1,
    "skymagic.core.policy": 1,
    "skymagic.policy": 1,  # the public path users write in config; re-exports core.policy
    # 2: the per-context client
    "skymagic.core.client": 2,
    "skymagic.core.transport": 2,
    "skymagic.core.failures": 2,
    "skymagic.core.official": 2,
    "skymagic.core.streams": 2,
    "skymagic.core.watch": 2,
    "skymagic.core.podstreams": 2,
    # 3: targets and fan-out
    "skymagic.core.targets": 3,
    "skymagic.core.fanout": 3,
    # 4: operations
    "skymagic.health": 4,
    "skymagic.gpus.inventory": 4,
    "skymagic.gpus.lists": 4,
    "skymagic.gpus.watcher": 4,
    "skymagic.gpus.pods": 4,
    "skymagic.launches": 4,
    "skymagic.launches.*": 4,
    "skymagic.jobs": 4,
    "skymagic.jobs.*": 4,
    # 5: presentation, and the facade that lazily re-exports the operations
    "skymagic": 5,
    "skymagic.__main__": 5,
    "skymagic.ui": 5,
    "skymagic.ui.*": 5,
    # the simulator
    "skymagic.sim": SIM,
    "skymagic.sim.*": SIM,
}
SIM_MAY_IMPORT = frozenset({"skymagic.errors"})
MAY_IMPORT_SIM = frozenset({"skymagic.ui.cli", "skymagic.ui.demo"})
# Presentation never talks to the API itself: from the client layer it takes settings only.
UI_FROM_CLIENT = {
    "skymagic.core.client": frozenset({"ClientSettings"}),
    "skymagic.core.transport": frozenset(),
    "skymagic.core.failures": frozenset(),
    "skymagic.core.official": frozenset(),
}

# Known violations, each with why it is still here. Remove an entry when its fix lands.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}
KNOWN_CYCLES: dict[frozenset[str], str] = {
    frozenset({"skymagic", "skymagic.ui.magics"}): (
        "issue 11: the facade loads the magics, and %sky_version reads skymagic.__version__"
    ),
}
KNOWN_RAW_API: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    """One import statement's dependency of `importer` on `target` (names: what it takes)."""

    importer: str
    target: str
    names: tuple[str, ...]
    line: int
    module_level: bool  # executed on import: not inside a function nor under TYPE_CHECKING

    def where(self) -> str:
        path = MODULES[self.importer][0].relative_to(PACKAGE.parent)
        return f"{path}:{self.line}"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, is_package: bool) -> Iterator[Edge]:
    """Every skymagic import in one module, wherever it sits."""

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, module_level: bool) -> Iterator[Edge]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "skymagic":
                        yield Edge(name, alias.name, (), child.lineno, module_level)
            elif isinstance(child, ast.ImportFrom):
                source = resolve(child)
                if source.split(".")[0] != "skymagic":
                    continue
                for alias in child.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in MODULES:  # `from skymagic.core import client`
                        yield Edge(name, submodule, (), child.lineno, module_level)
                    else:
                        yield Edge(name, source, (alias.name,), child.lineno, module_level)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), module_level)
            else:
                yield from visit(child, module_level)

    yield from visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), True)


EDGES: list[Edge] = [
    edge for name, (path, pkg) in MODULES.items() for edge in _imports(name, path, pkg)
]


def layer(module: str) -> int | None:
    if module in LAYERS:
        return LAYERS[module]
    parts = module.split(".")
    for i in range(len(parts) - 1, 0, -1):
        wildcard = ".".join(parts[:i]) + ".*"
        if wildcard in LAYERS:
            return LAYERS[wildcard]
    return None


def _describe(edge: Edge) -> str:
    what = f" ({', '.join(edge.names)})" if edge.names else ""
    return f"{edge.where()}: {edge.importer} imports {edge.target}{what}"


def test_the_parser_sees_every_kind_of_import() -> None:
    """A guard on the guard: function-level and TYPE_CHECKING imports are edges too."""
    seen = {(e.importer, e.target, e.module_level) for e in EDGES}
    assert ("skymagic.ui.dashboard.view", "skymagic.gpus.inventory", False) in seen  # TYPE_CHECKING
    assert ("skymagic.ui.cli", "skymagic.sim", False) in seen  # inside a function
    assert ("skymagic.core.auth", "skymagic.core.kubeconfig", True) in seen
    assert len(MODULES) > 40 and len(EDGES) > 100


def test_every_module_is_classified() -> None:
    unmapped = sorted(m for m in MODULES if layer(m) is None)
    assert not unmapped, f"add these modules to LAYERS in {__file__}: {unmapped}"


def test_every_import_names_a_module_that_exists() -> None:
    missing = [_describe(e) for e in EDGES if e.target not in MODULES]
    assert not missing, missing


def _upward() -> dict[tuple[str, str], list[Edge]]:
    found: dict[tuple[str, str], list[Edge]] = {}
    for edge in EDGES:
        here, there = layer(edge.importer), layer(edge.target)
        if here is None or there is None or here == SIM or there == SIM:
            continue
        if there > here:
            found.setdefault((edge.importer, edge.target), []).append(edge)
    return found


def test_no_module_imports_a_higher_layer() -> None:
    found = _upward()
    new = [_describe(e) for key, edges in found.items() if key not in KNOWN_UPWARD for e in edges]
    assert not new, "imports reaching up a layer:\n" + "\n".join(new)
    fixed = sorted(set(KNOWN_UPWARD) - set(found))
    assert not fixed, f"fixed, remove from KNOWN_UPWARD: {fixed}"


def test_the_simulator_imports_only_the_error_tree() -> None:
    bad = [
        _describe(e)
        for e in EDGES
        if layer(e.importer) == SIM and layer(e.target) != SIM and e.target not in SIM_MAY_IMPORT
    ]
    assert not bad, "the simulator must not use the code it tests:\n" + "\n".join(bad)


def test_only_the_cli_and_the_demo_start_the_simulator() -> None:
    bad = [
        _describe(e)
        for e in EDGES
        if layer(e.target) == SIM and layer(e.importer) != SIM and e.importer not in MAY_IMPORT_SIM
    ]
    assert not bad, "\n".join(bad)


def _raw_api() -> dict[tuple[str, str], list[Edge]]:
    found: dict[tuple[str, str], list[Edge]] = {}
    for edge in EDGES:
        if layer(edge.importer) != 5 or edge.target not in UI_FROM_CLIENT:
            continue
        taken = edge.names or ("<the module>",)
        for name in taken:
            if name not in UI_FROM_CLIENT[edge.target]:
                found.setdefault((edge.importer, f"{edge.target}.{name}"), []).append(edge)
    return found


def test_presentation_does_not_talk_to_the_api_itself() -> None:
    found = _raw_api()
    new = [_describe(e) for key, edges in found.items() if key not in KNOWN_RAW_API for e in edges]
    assert not new, "presentation reaching the client directly:\n" + "\n".join(new)
    fixed = sorted(set(KNOWN_RAW_API) - set(found))
    assert not fixed, f"fixed, remove from KNOWN_RAW_API: {fixed}"


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for edge in EDGES:
        if edge.target in MODULES:
            graph[edge.importer].add(edge.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan), plus self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_cycle_finder() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    assert sorted(map(sorted, _cycles(graph))) == [["a", "b", "c"], ["e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_import_graph())
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    fixed = [sorted(c) for c in set(KNOWN_CYCLES) - set(cycles)]
    assert not fixed, f"fixed, remove from KNOWN_CYCLES: {fixed}"


def test_the_facade_imports_only_pure_modules_when_imported() -> None:
    """`import skymagic.anything` runs skymagic/__init__.py first: it must stay at layer 0."""
    eager = [e for e in EDGES if e.importer == "skymagic" and e.module_level]
    assert eager, "the facade re-exports the error classes at import"
    heavy = [_describe(e) for e in eager if layer(e.target) != 0]
    assert not heavy, "load these lazily (the facade's __getattr__):\n" + "\n".join(heavy)


@pytest.mark.parametrize(
    "known", [*KNOWN_UPWARD.values(), *KNOWN_CYCLES.values(), *KNOWN_RAW_API.values()]
)
def test_every_known_violation_names_its_issue(known: str) -> None:
    assert known.startswith("issue ")
