"""A throwaway copy of the project in a temporary git + DVC repository, with small params."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

SMALL = {
    "data": {"synthetic": {"n_users": 300, "n_items": 150, "n_interactions": 6000}},
    "sampler": {"n_neg": 2, "pool_epochs": 2},
    "model": {  # every model small, so any of them can be switched on
        "bpr": {"factors": 8},
        "lmf": {"factors": 8},
        "gmf": {"factors": 8},
        "mlp": {"factors": 4, "layers": [8, 4]},
        "neumf": {"factors": 4, "mlp_factors": 4, "layers": [8, 4]},
        "ials": {"factors": 8, "iterations": 3},
    },
    "train": {"epochs": 2, "batch_size": 1024},
    "evaluate": {"n_eval_neg": 49},
}


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        base[k] = _merge(base.get(k) or {}, v) if isinstance(v, dict) else v
    return base


def sh(
    cwd: Path, *cmd: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd`` with this venv first on PATH (and ``env`` added). In a project
    copy (one with src/negsamp) the copy's own code runs, whatever package the venv has."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    if (Path(cwd) / "src" / "negsamp").is_dir():
        own = [str(Path(cwd).resolve() / "src"), str(Path(cwd).resolve())]
        env["PYTHONPATH"] = os.pathsep.join([*own, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_project(dest: Path, params: dict | None = None) -> Path:
    """Copy the tracked project files to ``dest``, shrink params, commit to a fresh git repo."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file() and not f.startswith(("data/", "tests/")):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    p = dest / "params.yaml"
    raw = _merge(yaml.safe_load(p.read_text()), _merge(copy.deepcopy(SMALL), params or {}))
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    sh(dest, "git", "init", "-q", "-b", "main")
    sh(dest, "git", "config", "user.email", "ci@negsamp.local")
    sh(dest, "git", "config", "user.name", "negsamp ci")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "test project")
    return dest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = make_project(tmp_path / "proj")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    yield root


def run_stages(root: Path, upto: str = "evaluate") -> None:
    """Run the pipeline's stages in-process in ``root`` (cwd must be ``root``)."""
    from negsamp import config
    from negsamp.paths import Paths
    from negsamp.stages import ORDER, PER_VARIANT, module

    cfg = config.load(root / "params.yaml")
    paths = Paths(root)
    for name in ORDER[: ORDER.index(upto) + 1]:
        if name in PER_VARIANT:
            for v in cfg.variants:
                module(name).run(cfg, paths, v)
        else:
            module(name).run(cfg, paths)


@pytest.fixture
def trained_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small project with every stage up to evaluate done (nothing registered yet)."""
    monkeypatch.chdir(project)
    run_stages(project, "evaluate")
    return project


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server (sqlite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
