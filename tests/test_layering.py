"""The engine's layers stay true: no import circles, no import that runs up the pipeline.

Read top to bottom the folders are the pipeline: ``cli`` -> ``run`` -> ``decide`` -> ``rules``
-> the shared modules at the top of ``custsync.engine`` (model, ports, errors, ...). A module
may import its own layer and the layers below it, never one above; ``config`` (custsync.yaml)
reads YAML and diagnostics through ``rules`` and is read by ``run`` and ``cli``. Every import
counts, also one inside a function or under ``TYPE_CHECKING``: a circle hidden in a function
is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"
PACKAGE = "custsync.engine"

#: the shared modules at the top of the engine: they import nothing but each other
SHARED = "shared"
#: layer -> its rank; a module may import modules of its own rank or lower
RANK = {SHARED: 0, "rules": 1, "config": 2, "decide": 2, "run": 3, "console": 4, "cli": 4}
#: layers of equal rank that must still not import each other
APART = {("decide", "config"), ("config", "decide"), ("console", "cli")}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = path.relative_to(ENGINE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((PACKAGE, *parts))] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    rest = module.removeprefix(PACKAGE).lstrip(".").split(".")
    if rest == [""]:
        return SHARED  # the package's own __init__
    if rest[0] in ("rules", "decide", "run", "console", "cli"):
        return rest[0]
    if rest[0] == "config":
        return "config"
    return SHARED


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """The engine modules ``module`` imports (a package import counts as its __init__)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            if node.level:
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            targets = [f"{target}.{alias.name}" for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != module:
                yield target, node.lineno
                break


GRAPH = {module: dict(_imports(module, path)) for module, path in MODULES.items()}


def test_the_engine_has_its_layers() -> None:
    layers = {_layer(module) for module in MODULES}
    assert {"rules", "decide", "run", "cli", "config", SHARED} <= layers
    for package in ("rules", "decide", "run", "console", "cli"):
        init = ENGINE / package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{init} needs a docstring saying what it may import"


def test_no_import_runs_up_the_layers() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        mine = _layer(module)
        for target, line in targets.items():
            theirs = _layer(target)
            if RANK[theirs] > RANK[mine] or (mine, theirs) in APART:
                wrong.append(f"{MODULES[module].relative_to(ENGINE.parent)}:{line}: "
                             f"{mine} imports {theirs} ({target})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b": 1}, "b": {"a": 2}}, [["a", "b"]]),
        ({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}, [["a", "b", "c"]]),
        ({"a": {"b": 1}, "b": {}}, []),
    ],
)
def test_the_circle_finder_finds_circles(
    graph: dict[str, dict[str, int]], expected: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(globals(), "GRAPH", graph)
    assert _cycles() == expected


def test_the_layer_check_sees_an_upward_import() -> None:
    """A rules module importing decide is caught (guards the check itself)."""
    assert RANK[_layer(f"{PACKAGE}.decide.engine")] > RANK[_layer(f"{PACKAGE}.rules.compile")]
    assert _layer(f"{PACKAGE}.model") == SHARED
    assert _layer(f"{PACKAGE}.config") == "config"
