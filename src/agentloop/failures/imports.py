"""The project's import graph (Python and JS/TS) and each file's level in it.

A file's level is 0 when it imports no other project file, otherwise one more than the
highest level among the files it imports (import cycles count as one file). Fixing
low-level files first fixes the utilities that features are built on.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath

_SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", "env", ".tox", ".nox", "node_modules", "__pycache__",
    "build", "dist", ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", ".agentloop",
    "coverage", ".next", ".cache",
}  # fmt: skip
_PY = (".py",)
_JS = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts")
_MAX_FILES = 20_000
_MAX_BYTES = 1_000_000
_JS_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]"""
    r"""|(?:^|[;\s])import\s*['"]([^'"]+)['"]"""
    r"""|\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)""",
    re.M,
)


def _walk(root: Path) -> Iterator[str]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(_PY + _JS):
                count += 1
                if count > _MAX_FILES:
                    return
                yield os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")


def _module_names(rel: str) -> list[str]:
    """Dotted names a Python file can be imported as: from the root, or from a src/ dir."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    names = [".".join(parts)] if parts else []
    for anchor in ("src", "lib"):
        if anchor in parts[:-1]:
            names.append(".".join(parts[parts.index(anchor) + 1 :]))
    return [n for n in names if n]


def _python_imports(rel: str, source: str) -> Iterable[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    package = list(PurePosixPath(rel).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` depends on pkg/mod.py, not on pkg/__init__.py; a name
            # that is not a module resolves upwards to the module that defines it.
            for alias in node.names:
                yield f"{base}.{alias.name}" if base else alias.name


def _resolve_python(name: str, modules: dict[str, str]) -> str | None:
    while name:
        if name in modules:
            return modules[name]
        name = name.rpartition(".")[0]
    return None


def _resolve_js(rel: str, spec: str, files: set[str]) -> str | None:
    if not spec.startswith("."):
        return None
    base = os.path.normpath(os.path.join(os.path.dirname(rel), spec)).replace(os.sep, "/")
    stem = base
    for ext in _JS:
        if base.endswith(ext):
            stem = base[: -len(ext)]
            break
    candidates = [base, *(stem + ext for ext in _JS), *(f"{base}/index{ext}" for ext in _JS)]
    return next((c for c in candidates if c in files), None)


def import_graph(root: Path) -> dict[str, set[str]]:
    """file → the project files it imports (paths relative to root, POSIX separators)."""
    files = list(_walk(root))
    file_set = set(files)
    modules: dict[str, str] = {}
    for rel in files:
        if rel.endswith(_PY):
            for name in _module_names(rel):
                modules.setdefault(name, rel)
    graph: dict[str, set[str]] = {}
    for rel in files:
        path = root / rel
        try:
            if path.stat().st_size > _MAX_BYTES:
                continue
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        edges: set[str] = set()
        if rel.endswith(_PY):
            for name in _python_imports(rel, source):
                target = _resolve_python(name, modules)
                if target and target != rel:
                    edges.add(target)
        else:
            for match in _JS_IMPORT.finditer(source):
                spec = next(g for g in match.groups() if g)
                target = _resolve_js(rel, spec, file_set)
                if target and target != rel:
                    edges.add(target)
        graph[rel] = edges
    return graph


def reachable(start: Iterable[str], graph: Mapping[str, Iterable[str]]) -> set[str]:
    """`start` and every file it leads to through `graph`, directly or not."""
    seen = set(start)
    todo = list(seen)
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def importers(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """The graph the other way round: each file → the files that import it."""
    reverse: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            reverse.setdefault(target, set()).add(source)
    return reverse


def levels(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each file's height in the graph; files in one import cycle share a level."""
    # Tarjan's strongly connected components, iteratively (deep graphs overflow recursion).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component: dict[str, int] = {}
    components: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = len(components)
                    members.append(member)
                    if member == node:
                        break
                components.append(members)
    # Tarjan emits components in reverse topological order: dependencies first.
    height: list[int] = []
    for number, members in enumerate(components):
        deps = {component[d] for m in members for d in graph.get(m, ()) if component[d] != number}
        height.append(1 + max((height[d] for d in deps), default=-1))
    return {node: height[number] for node, number in component.items()}
