"""Recording outputs with DVC after a Prefect run, so `dvc repro` finds nothing to do."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _dvc() -> list[str]:
    exe = Path(sys.executable).with_name("dvc")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dvc")
    return [found] if found else [sys.executable, "-m", "dvc"]


def is_dvc_repo(root: Path) -> bool:
    return (root / ".dvc").is_dir() and (root / "dvc.yaml").is_file()


def _call(root: Path, *args: str) -> str:
    proc = subprocess.run([*_dvc(), *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`dvc {' '.join(args)}` failed in {root}:\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def record(root: Path) -> dict[str, bool]:
    """`dvc commit` every stage's outputs into dvc.lock; `dvc push` when a remote is set."""
    root = root.resolve()
    if not is_dvc_repo(root):
        log.warning("%s is not a DVC project (no .dvc/ or dvc.yaml): outputs not recorded", root)
        return {"committed": False, "pushed": False}
    _call(root, "commit", "--force", "--quiet")
    pushed = False
    if _call(root, "remote", "list").strip():
        _call(root, "push", "--quiet")
        pushed = True
    log.info("recorded outputs in dvc.lock%s", " and pushed them" if pushed else "")
    return {"committed": True, "pushed": pushed}


def add(root: Path, path: str) -> bool:
    """`dvc add` one file so it is versioned on arrival; False outside a DVC project."""
    root = root.resolve()
    if not is_dvc_repo(root):
        log.warning("%s is not a DVC project: %s is not versioned", root, path)
        return False
    _call(root, "add", "--quiet", path)
    return True
