"""The shape of the maildesk package, read with :mod:`ast` (nothing is imported or run).

* no import cycle between maildesk's modules, counting imports inside functions too (a
  cycle hidden in a function is still a cycle);
* no module over MAX_LINES lines;
* every package's ``__init__.py`` has a docstring that names each of its modules
  (``name.py``) and sub-packages (``name/``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "maildesk"
MAX_LINES = 400
# Being rewritten right now; they come off this list once they are split.


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (migrations included)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name a (possibly relative) ``from X import`` refers to."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _target(name: str) -> str | None:
    """The maildesk module ``name`` is, or the nearest enclosing one (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path) -> set[str]:
    """The maildesk modules ``module`` imports, at any depth of its code (functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            # ``from pkg import mod`` imports the submodule pkg.mod; ``from mod import name`` imports mod
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            target = _target(name)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    return {module: imports_of(module, path) for module, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_graph_sees_relative_and_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    rel = ast.parse("from .store import x\nfrom ..errors import y\nfrom . import batch").body
    init, mod = PACKAGE / "storage" / "__init__.py", PACKAGE / "storage" / "store.py"
    assert [_resolve("maildesk.storage", init, n) for n in rel] == ["maildesk.storage.store", "maildesk.errors", "maildesk.storage"]
    assert [_resolve("maildesk.storage.store", mod, n) for n in rel] == ["maildesk.storage.store", "maildesk.errors", "maildesk.storage"]
    here = import_graph()
    assert "maildesk.errors" in here["maildesk.cli.errors"]  # a plain top-level import
    assert "maildesk.storage.store" in here["maildesk.cli.events"]  # only imported inside a function


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_no_module_over_the_line_limit():
    too_long = {}
    for path in MODULES.values():
        rel = path.relative_to(PACKAGE.parent).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            too_long[rel] = lines
    assert not too_long, f"modules over {MAX_LINES} lines (split them by what they do): {too_long}"


def test_every_package_docstring_names_its_modules():
    missing = {}
    for module, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        children = sorted(p.name if p.is_file() else f"{p.name}/" for p in path.parent.iterdir()
                          if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file())
        unnamed = [c for c in children if not re.search(rf"(?<![\w./]){re.escape(c)}(?![\w])", doc)]
        if not doc or unnamed:
            missing[module] = unnamed or ["(no docstring)"]
    assert not missing, f"package docstrings that do not name every module: {missing}"
