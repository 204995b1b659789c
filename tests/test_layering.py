"""The package's layering, kept by CI: no new import circle, no new private module imported across packages.

Every import of ``src/multitask`` is read from the source (top-level, function-level and ``TYPE_CHECKING``
imports alike: a circle hidden in a function is still a circle). Two rules:

- modules import each other without circles;
- a private module (``_name.py``) is imported only from inside its own package (``multitask.data._tabular``
  from ``multitask.data.*``; the top package's private modules, e.g. ``multitask._backward``, from anywhere).

No module breaks either rule today; the lists below are for a debt knowingly taken on. They only
shrink: an import that joins them fails, and so does an entry that no longer happens.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"

# The strongly connected groups of modules that import each other (each a circle or several): none left.
KNOWN_CIRCLES: set[frozenset[str]] = set()

# (importer, private module of another package) pairs that exist today: none left.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__.py``)."""
    found = {}
    for path in sorted((SOURCE / "multitask").rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (``from P import m`` counts ``P.m``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: set[frozenset[str]] = set()

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
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
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.add(frozenset(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return groups


def private_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(importer, module) pairs where ``module`` is private to a package that ``importer`` is outside of."""
    found = set()
    for importer, targets in graph.items():
        for target in targets:
            owner, _, last = target.rpartition(".")
            private = last.startswith("_") and not last.startswith("__")
            if private and owner != "multitask" and importer != owner and not importer.startswith(owner + "."):
                found.add((importer, target))
    return found


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert "multitask.training.trainer" in graph["multitask.training"]  # from multitask.training.trainer import
    assert "multitask.training._data" in graph["multitask.training._distributed_step"]  # under TYPE_CHECKING
    assert "multitask.comparison" in graph["multitask.studies._baselines"]
    assert "multitask.studies" in graph["multitask.baselines"]


def test_no_new_import_circle() -> None:
    found = circles(import_graph())
    assert found - KNOWN_CIRCLES == set(), f"new import circle(s): {[sorted(c) for c in found - KNOWN_CIRCLES]}"
    gone = KNOWN_CIRCLES - found
    assert gone == set(), f"these circles are gone: delete them from KNOWN_CIRCLES: {[sorted(c) for c in gone]}"


def test_no_new_private_import_across_packages() -> None:
    found = private_imports(import_graph())
    new = sorted(found - KNOWN_PRIVATE_IMPORTS)
    assert new == [], f"private modules imported from outside their package (import the package's public name): {new}"
    gone = sorted(KNOWN_PRIVATE_IMPORTS - found)
    assert gone == [], f"these imports are gone: delete them from KNOWN_PRIVATE_IMPORTS: {gone}"


def test_the_rules_catch_what_they_are_for() -> None:
    graph = {"multitask.a": {"multitask.b._x"}, "multitask.b._x": {"multitask.a"}, "multitask.b": {"multitask.b._x"}}
    assert circles(graph) == {frozenset({"multitask.a", "multitask.b._x"})}
    assert private_imports(graph) == {("multitask.a", "multitask.b._x")}
    assert private_imports({"multitask.a": {"multitask._backward"}, "multitask._backward": set()}) == set()
