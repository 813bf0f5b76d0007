"""The project's layout in figures: which package imports which, lines per package, the largest functions, imports
inside function bodies. Run from the repository root: ``python .ci/layout.py`` (``--check`` exits 1 on a cycle or
an upward import, as tests/test_layout.py does).

A package is a folder of the source tree (``dojo_bench/dojo``, ``world_model``); loose modules belong to their
folder. Layers (``LAYERS``, lowest first) say which way imports may point: a package may import only packages of
its own or a lower layer.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOTS = ("dojo_bench", "world_model", "planners", "policies", "reports")
# Lowest first; a package not named here is reported as unplaced.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dojo_bench.core",),
    ("world_model", "policies", "policies.zoo"),
    ("dojo_bench.dojo", "dojo_bench.value", "planners"),
    ("dojo_bench.engine",),
    ("dojo_bench.train", "reports", "dojo_bench.shipped"),
    ("dojo_bench.verbs", "dojo_bench"),
)


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the source roots."""
    found = {}
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def package_of(module: str, known: dict[str, Path]) -> str:
    """The folder a module lives in (a package's ``__init__`` belongs to the package itself)."""
    path = known[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The project modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def measure(root: Path) -> dict:
    known = modules(root)
    edges: dict[tuple[str, str], int] = defaultdict(int)
    lines: dict[str, int] = defaultdict(int)
    functions: list[tuple[int, str]] = []
    inner_imports: list[str] = []
    inner_project: list[str] = []
    for module, path in known.items():
        text = path.read_text()
        tree = ast.parse(text)
        package = package_of(module, known)
        lines[package] += len(text.splitlines())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((size, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        where = f"{path.relative_to(root)}:{inner.lineno}"
                        inner_imports.append(where)
                        names = imported(inner, module, path.name == "__init__.py")
                        if any(resolve(name, known) for name in names):
                            inner_project.append(where)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in imported(node, module, path.name == "__init__.py"):
                    target = resolve(name, known)
                    if target and package_of(target, known) != package:
                        edges[(package, package_of(target, known))] += 1
    return {
        "edges": dict(edges),
        "lines": dict(lines),
        "functions": sorted(functions, reverse=True),
        "inner_imports": sorted(set(inner_imports)),
        "inner_project": sorted(set(inner_project)),
    }


def cycles(edges: dict[tuple[str, str], int]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    graph: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        graph[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def layer(package: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if package in names:
            return i
    return None


def upward(edges: dict[tuple[str, str], int]) -> list[str]:
    """Imports from a package to one of a higher layer, or to or from an unplaced package."""
    bad = []
    for (a, b), count in sorted(edges.items()):
        la, lb = layer(a), layer(b)
        if la is None or lb is None or lb > la:
            bad.append(f"{a} -> {b} ({count})")
    return bad


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    m = measure(root)
    print("imports between packages (importer -> imported: import statements)")
    for (a, b), count in sorted(m["edges"].items()):
        print(f"  {a} -> {b}: {count}")
    print("lines per package")
    for package, count in sorted(m["lines"].items(), key=lambda kv: -kv[1]):
        if count:
            print(f"  {package}: {count}")
    print("five largest functions (lines)")
    for size, where in m["functions"][:5]:
        print(f"  {size} {where}")
    print(
        f"imports inside function bodies: {len(m['inner_imports'])}, "
        f"of the project's own modules: {len(m['inner_project'])}"
    )
    found, bad = cycles(m["edges"]), upward(m["edges"])
    print(f"package cycles: {found or 'none'}")
    print(f"upward or unplaced imports: {bad or 'none'}")
    return 1 if "--check" in argv and (found or bad) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
