"""The package's shape: no import circle among its modules, no module past the size cap.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a circle that
only type-checks is still a circle for the next reader (issue 17, STYLE.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import seawall

SRC = Path(seawall.__file__).parent
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ("seawall", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                if full in modules:
                    targets.add(full)
                elif origin in modules:
                    targets.add(origin)
    targets.discard(name)
    return targets


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root, first in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(first)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    return circles


def test_no_import_circle_among_the_package_modules() -> None:
    """Imports point one way: no set of modules imports each other round."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert len(graph) > 100  # the scan saw the package
    assert [] == _circles(graph)


def test_the_circle_finder_finds_a_circle() -> None:
    """The check above can fail: a circle of three is found, a chain is not."""
    assert [["a", "b", "c"]] == _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert [] == _circles({"a": {"b"}, "b": {"c"}, "c": set()})


def test_no_module_past_the_size_cap() -> None:
    """Past about 600 lines a module is split by concept (STYLE.md)."""
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _modules().items()
    }
    assert {} == {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
