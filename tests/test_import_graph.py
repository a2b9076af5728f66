"""The package's import graph: no cycles (imports inside functions count) and no ``_private`` name imported
from another module.

Every ``import``/``from ... import`` in ``src/lumachrome`` is read from the AST, wherever it stands (module
level, inside functions, under ``if TYPE_CHECKING``), relative imports resolved. A module imports a package
module ``lumachrome.a.b`` when it names it, or a name of it (``from lumachrome.a import b`` counts as
``lumachrome.a.b`` when ``b`` is a submodule, else as ``lumachrome.a``). Importing a submodule also runs its
package's ``__init__``, but that edge is left out: a package re-exporting its own modules is no cycle of
the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "lumachrome"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def _absolute(mod: str, node: ast.ImportFrom) -> str:
    """The module a ``from X import ...`` names, relative levels resolved against ``mod``."""
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if _is_package(mod) else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import statement of ``mod``."""
    tree = ast.parse(MODULES[mod].read_text(), filename=str(MODULES[mod]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(mod, node)
            found += [(target, a.name, node.lineno) for a in node.names]
    return found


def _edges(mod: str) -> set[str]:
    """The package modules that ``mod`` imports (see the module docstring)."""
    out = set()
    for target, name, _ in _imports(mod):
        if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
            continue
        if name is not None and f"{target}.{name}" in MODULES:
            out.add(f"{target}.{name}")
        elif target in MODULES:
            out.add(target)
    out.discard(mod)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(sccs)


def _graph() -> dict[str, set[str]]:
    # a package's own submodules imported by its __init__ (re-exports) are not counted, see the docstring
    return {m: {t for t in _edges(m) if not (_is_package(m) and t.startswith(m + "."))} for m in MODULES}


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles among the package's modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_private_names_imported_across_modules() -> None:
    bad = []
    for mod in MODULES:
        for target, name, line in _imports(mod):
            if not (target == PACKAGE or target.startswith(PACKAGE + ".")) or target == mod:
                continue
            private_module = any(p.startswith("_") and not p.startswith("__") for p in target.split("."))
            private_name = name is not None and name.startswith("_") and not name.startswith("__")
            if private_name or private_module:
                bad.append(f"{MODULES[mod].relative_to(SRC)}:{line}: {target}{'' if name is None else ' import ' + name}")
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)
