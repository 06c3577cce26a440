"""Which negsamp modules a stage's code reaches, read from the source with ``ast``.

Starting from a stage's ``run``, the walk follows what the code names:

- ``from negsamp.x import f``: the top-level definition ``f`` of ``negsamp.x`` and, in
  turn, every name its body (or a class's whole body) uses, imports inside functions
  included; module-level imports count only where a reached definition uses them.
- ``import negsamp.x`` / ``from negsamp import x`` (a module object), a package's
  ``__init__`` (it runs on import, and registers plug-ins), and every package above a
  reached module: the whole module, every import in it.
- a definition decorated by a negsamp decorator factory (``@register_model("bpr")``) is
  reached whenever its module is: the decorator registers it for look-up by name.

Imports under ``if TYPE_CHECKING:`` never run and are skipped; ``SPEC`` (the declaration
itself) is not followed. Modules under ``leaves`` are recorded but not walked into.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"
Target = tuple[str, str | None]  # (module, top-level name or None for the whole module)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def module_file(module: str) -> Path | None:
    p = SRC.joinpath(*module.split("."))
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None


@functools.cache
def _tree(module: str) -> ast.Module:
    return ast.parse(module_file(module).read_text())  # type: ignore[union-attr]


def _type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    t = node.test
    return getattr(t, "id", getattr(t, "attr", None)) == "TYPE_CHECKING"


def _bindings(module: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, Target]]:
    """(local name, target) for each negsamp name an import statement binds."""
    if isinstance(node, ast.Import):
        return [
            (a.asname or a.name.split(".")[0], (a.name, None))
            for a in node.names
            if a.name.split(".")[0] == "negsamp"
        ]
    if node.level:
        pkg = module if module_file(module).name == "__init__.py" else module.rpartition(".")[0]  # type: ignore[union-attr]
        parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
        source = ".".join([*parts, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    if source.split(".")[0] != "negsamp":
        return []
    out: list[tuple[str, Target]] = []
    for a in node.names:
        sub = f"{source}.{a.name}"
        out.append((a.asname or a.name, (sub, None) if module_file(sub) else (source, a.name)))
    return out


def _imports(module: str, nodes: Iterable[ast.AST]) -> list[Target]:
    out: list[Target] = []

    def visit(n: ast.AST) -> None:
        if _type_checking(n):
            for x in n.orelse:  # type: ignore[attr-defined]
                visit(x)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            out.extend(t for _, t in _bindings(module, n))
        else:
            for c in ast.iter_child_nodes(n):
                visit(c)

    for n in nodes:
        visit(n)
    return out


def _names(nodes: Iterable[ast.AST]) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


@functools.cache
def _table(module: str) -> tuple[dict[str, ast.AST], dict[str, Target], tuple[ast.AST, ...]]:
    """(top-level definitions by name, module-level import bindings, always-run statements)."""
    defs: dict[str, ast.AST] = {}
    binds: dict[str, Target] = {}
    always: list[ast.AST] = []
    body = _tree(module).body
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            binds.update(_bindings(module, node))
    for node in body:
        if isinstance(node, _DEFS):
            defs[node.name] = node
            registers = any(
                isinstance(d, ast.Call) and getattr(d.func, "id", None) in binds | defs
                for d in node.decorator_list
            )
            if registers:
                always.append(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defs.update(
                (n.id, node) for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)
            )
        elif not (
            isinstance(node, ast.Import | ast.ImportFrom)
            or _type_checking(node)
            or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ):
            always.append(node)  # module-level code that runs on import
    return defs, binds, tuple(always)


def reached(
    module: str, name: str = "run", leaves: tuple[str, ...] = ("negsamp.config",)
) -> set[str]:
    """Every negsamp module whose code ``module.name`` reaches (see the module docstring)."""
    out: set[str] = set()
    seen: set[Target] = set()
    todo: list[Target] = [(module, name)]
    while todo:
        target = todo.pop()
        mod, top = target
        if target in seen or module_file(mod) is None:
            continue
        seen.add(target)
        out.add(mod)
        parts = mod.split(".")
        todo.extend((".".join(parts[:i]), None) for i in range(1, len(parts)))
        if mod in leaves or mod.startswith(tuple(f"{x}." for x in leaves)):
            continue
        if top is None or module_file(mod).name == "__init__.py":  # type: ignore[union-attr]
            todo.extend(_imports(mod, _tree(mod).body))
            continue
        defs, binds, always = _table(mod)
        work: list[str | ast.AST] = [top, *always]
        done: set[str] = set()
        while work:
            item = work.pop()
            if isinstance(item, str):
                if item in done or item == "SPEC":
                    continue
                done.add(item)
                if item in binds:
                    todo.append(binds[item])
                    continue
                if item not in defs:
                    continue  # a builtin, a local or a parameter
                item = defs[item]
            todo.extend(_imports(mod, [item]))
            work.extend(_names([item]))
    return out
