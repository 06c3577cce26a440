"""Rebuild a registered model from its lineage tags: a git clone at the tagged commit,
the DVC-tracked inputs that commit names, and `dvc repro`.

Shared by the tests that check a model can be rebuilt from what MLflow says made it
(issue #7: a retrained champion; issue #6: a sweep child).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's dvc and negsamp


def _run(cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed in {cwd} ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def reproduce(origin: Path, commit: str, stage: str, dest: Path) -> Path:
    """Clone ``origin`` at ``commit`` into ``dest`` and `dvc repro` ``stage`` there.

    Only what the commit names is fetched: the files tracked by its ``*.dvc`` files (the
    raw log's appended batches), pulled from ``origin``'s DVC cache used as a read-only
    remote. The clone holds no stage output and an empty run-cache, so `dvc repro` runs
    every stage up to ``stage`` (e.g. ``evaluate@default``), with the clone's own code (its
    ``src`` first on PYTHONPATH) and its own MLflow store: ``origin`` is only read.
    Returns the clone's root.
    """
    origin, dest = origin.resolve(), dest.resolve()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(
            [str(dest / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    _run(origin.parent, "git", "clone", "-q", "--no-checkout", str(origin), str(dest))
    _run(dest, "git", "checkout", "-q", "--detach", commit)
    tracked = _run(dest, "git", "ls-files", "--", "*.dvc").split()
    if tracked:
        cache = _run(origin, "dvc", "cache", "dir", env=env).strip()
        _run(dest, "dvc", "remote", "add", "--local", "lineage-origin", cache, env=env)
        _run(dest, "dvc", "pull", "--quiet", "--remote", "lineage-origin", *tracked, env=env)
    _run(dest, "dvc", "repro", stage, env=env)
    return dest
