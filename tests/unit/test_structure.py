"""The package's import rules (issue #12): one package owns MLflow, nothing imports flows/,
no import cycle between negsamp modules. Read from the source with ``ast``: every import,
including those inside functions, with relative imports resolved."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MLFLOW_PACKAGE = "negsamp.mlops"


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted((SRC / "negsamp").rglob("*.py")):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, module_level_only: bool = False) -> set[str]:
    """Absolute names of what ``name`` imports: ``a.b`` for ``import a.b`` and, for
    ``from a import b``, ``a.b`` when that is a negsamp module, else ``a``."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue  # annotations only: never executed
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            if isinstance(child, ast.Import) and (inner or not module_level_only):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and (inner or not module_level_only):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    found.add(sub if sub in MODULES else base)
            if not module_level_only or inner:
                visit(child, inner)

    visit(tree, True)
    return found


def test_only_the_mlflow_package_imports_mlflow() -> None:
    offenders = {
        name: sorted(i for i in _imports(name, path) if i.split(".")[0] == "mlflow")
        for name, path in MODULES.items()
        if not (name == MLFLOW_PACKAGE or name.startswith(MLFLOW_PACKAGE + "."))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_mlflow_package_is_where_mlflow_is_used() -> None:
    users = {n for n, p in MODULES.items() if any(i.startswith("mlflow") for i in _imports(n, p))}
    assert {"negsamp.mlops.gate", "negsamp.mlops.champion", "negsamp.mlops.pyfunc"} <= users


def test_only_the_cluster_package_imports_ray() -> None:
    """Ray is an optional extra (issue #16): the local engine must never need it."""
    offenders = {
        name: sorted(i for i in _imports(name, path) if i.split(".")[0] in ("ray", "prefect_ray"))
        for name, path in MODULES.items()
        if not name.startswith("negsamp.cluster")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    users = {n for n, p in MODULES.items() if any(i.startswith("ray") for i in _imports(n, p))}
    assert "negsamp.cluster.runtime" in users


def test_nothing_in_the_package_imports_flows_or_prefect() -> None:
    """The commands that start flows (run, sweep, drift, demo-drift) live in flows/cli.py and
    join the CLI through the ``negsamp.commands`` entry point: the package never imports flows."""
    offenders = {
        name: sorted(i for i in _imports(name, path) if i.split(".")[0] in ("flows", "prefect"))
        for name, path in MODULES.items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    """negsamp module -> the negsamp modules it imports. A package importing its own
    submodules is left out: that is how a package fills its plug-in registry (models/,
    samplers/: the plug-ins import ``register_*`` from the package that imports them)."""
    return {
        name: {
            i
            for i in _imports(name, path, module_level_only)
            if i in MODULES and i != name and not i.startswith(name + ".")
        }
        for name, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of 2+ modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_negsamp_modules_at_module_level() -> None:
    assert _cycles(_graph(module_level_only=True)) == []


# Function-level imports that close a cycle: each is a design smell (registry <-> tracking
# was one). Known and owned elsewhere: config.tree imports config.load inside a method.
KNOWN_LAZY_CYCLES = [["negsamp.config.load", "negsamp.config.tree"]]


def test_no_new_import_cycle_through_function_level_imports() -> None:
    cycles = _cycles(_graph(module_level_only=False))
    assert [c for c in cycles if c not in KNOWN_LAZY_CYCLES] == []
    assert not [c for c in cycles if any(m.startswith(MLFLOW_PACKAGE) for m in c)]


def test_old_pickles_of_the_pyfunc_still_find_their_class_without_importing_mlflow() -> None:
    """Models logged before the move name negsamp.pyfunc / negsamp.registry.TopKRecommender."""
    from negsamp.mlops.pyfunc import TopKRecommender

    for module in ("negsamp.pyfunc", "negsamp.registry"):
        ref = f"c{module}\nTopKRecommender\n.".encode()  # pickle protocol 0: a global
        assert pickle.loads(ref) is TopKRecommender
    code = (
        "import sys, negsamp.pyfunc, negsamp.registry, negsamp.mlops.uri, negsamp.mlops.inputs, "
        "negsamp.mlops.lineage; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'mlflow'], 'mlflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SRC.parent)
