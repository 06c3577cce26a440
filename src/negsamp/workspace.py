"""A demo's own project folder, so a demo never mixes with the user's project (#13).

``negsamp demo-drift`` and ``negsamp simulate`` append simulated batches, commit them and
register models. Each does all of that in its own ``<project>/.negsamp/<kind>/`` (``demo``,
``simulation``): its own params.yaml (the project's
configuration with synthetic data, no appends, and its own registered model and
experiment), its own git repository and DVC project (so ``ingest --append`` versions and
commits there), and its own ``mlflow.db``. The project's files, git history, params.yaml
and MLflow store are never written. ``.negsamp/`` ignores itself in git (a ``.gitignore``
holding ``*``), so ``git status`` of the project does not change either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from negsamp import dvcops
from negsamp.config import PARAMS_FILE, Config, DataCfg, dump
from negsamp.io import atomic_write

STATE = Path(".negsamp")
DEMO = STATE / "demo"
MARKER = "NEGSAMP_DEMO_WORKSPACE"  # a folder holding it is ours to replace


def model_name(kind: str) -> str:
    """The registered model and experiment of a ``kind`` workspace: ``negsamp-<kind>``."""
    return f"negsamp-{kind}"


def demo_config(cfg: Config, kind: str = "demo") -> dict:
    """``cfg`` as a params.yaml document for a ``kind`` workspace: synthetic data at the
    synthesize stage's path, no appends, and its own registered model and experiment."""
    doc = dump(cfg)
    doc["data"] |= {"source": "synthetic", "path": DataCfg().path, "appends": []}
    doc["registry"] |= {"model_name": model_name(kind), "experiment": model_name(kind)}
    return doc


def _run(cwd: Path, *cmd: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed in {cwd}:\n{proc.stderr or proc.stdout}")


def create(root: Path, cfg: Config, kind: str = "demo") -> Path:
    """A fresh ``kind`` workspace under ``root`` (a previous one is replaced); returns its path.

    Raises RuntimeError when ``<root>/.negsamp/<kind>`` exists but is not a workspace.
    """
    ws = root.resolve() / STATE / kind
    if ws.exists():
        if not (ws / MARKER).is_file():
            raise RuntimeError(f"{ws} exists and is not a negsamp {kind} workspace: move it away")
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    ignore = ws.parent / ".gitignore"
    if not ignore.exists():  # the folder ignores itself, whatever the project's .gitignore says
        atomic_write(ignore, b"*\n")
    (ws / MARKER).write_text(f"negsamp {kind} workspace: replaced by the next {kind} run\n")
    params = yaml.safe_dump(demo_config(cfg, kind), sort_keys=False)
    atomic_write(ws / PARAMS_FILE, f"# negsamp {kind} workspace\n{params}".encode())
    dvc = b"# data only: the demo's batches are versioned with `dvc add`\nstages: {}\n"
    atomic_write(ws / "dvc.yaml", dvc)
    ignored = [
        "/mlflow.db",
        "/mlruns/",
        "/mlartifacts/",
        "/.prefect/",
        "/logs/",
        "/incoming/",
        "/report/",
        "/data/*",
        "!/data/raw/",
        "/data/raw/*.parquet",
    ]
    atomic_write(ws / ".gitignore", ("\n".join(ignored) + "\n").encode())
    _run(ws, "git", "init", "-q")
    _run(ws, "git", "config", "user.name", "negsamp demo")
    _run(ws, "git", "config", "user.email", "demo@negsamp.local")
    dvcops.init(ws)
    _run(ws, "git", "add", "-A")
    _run(ws, "git", "commit", "-qm", f"negsamp {kind} workspace")
    return ws


def tracking_uri(ws: Path) -> str:
    """The demo's own MLflow store (never the project's, nor MLFLOW_TRACKING_URI's)."""
    return f"sqlite:///{(ws / 'mlflow.db').resolve()}"


@contextmanager
def tracking_at(uri: str) -> Iterator[None]:
    """MLFLOW_TRACKING_URI set to ``uri`` while the block runs, then restored."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
