"""Recording outputs with DVC after a Prefect run, so `dvc repro` finds nothing to do, and
committing the files that pin a new data version to git."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from negsamp import faults

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


def _cache_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root / ".dvc" / "cache"))


def _crash_during(root: Path, *args: str) -> None:
    """The ``dvc:commit`` fault point: start ``dvc <args>``, and once it has written its first
    cache file (or after 10 s, or when it ends) SIGKILL it and this process together."""
    before = _cache_files(root)
    proc = subprocess.Popen([*_dvc(), *args], cwd=root, start_new_session=True)
    end = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < end and _cache_files(root) == before:
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    faults.crash()


def drop_partial_cache_writes(root: Path) -> list[Path]:
    """Remove what a killed DVC process was writing into the project's cache; returns it.

    DVC writes a cache object (and a run-cache entry) to a temporary ``.<random>.tmp``
    beside it, then renames it; a process killed in between (a ``negsamp run`` killed in
    ``dvc commit``) leaves that file for ever. They are removed only while this process
    holds DVC's own repository lock (``.dvc/tmp/lock``, held by every DVC command that
    writes), so no DVC process can be writing them; when the lock is busy nothing is done.
    """
    cache, lockfile = root / ".dvc" / "cache", root / ".dvc" / "tmp" / "lock"
    if not cache.is_dir():
        return []
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    with open(lockfile, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        try:
            found = [p for p in cache.rglob(".*.tmp") if p.is_file()]
            for p in found:
                p.unlink(missing_ok=True)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    if found:
        log.warning("removed %d partial file(s) a killed DVC process left in %s", len(found), cache)
    return found


def record(root: Path) -> dict[str, bool]:
    """`dvc commit` every stage's outputs into dvc.lock; `dvc push` when a remote is set."""
    root = root.resolve()
    if not is_dvc_repo(root):
        log.warning("%s is not a DVC project (no .dvc/ or dvc.yaml): outputs not recorded", root)
        return {"committed": False, "pushed": False}
    drop_partial_cache_writes(root)  # a previous commit killed half-way
    if faults.armed("dvc:commit"):
        _crash_during(root, "commit", "--force", "--quiet")
    _call(root, "commit", "--force", "--quiet")
    pushed = False
    if _call(root, "remote", "list").strip():
        _call(root, "push", "--quiet")
        pushed = True
    log.info("recorded outputs in dvc.lock%s", " and pushed them" if pushed else "")
    return {"committed": True, "pushed": pushed}


def up_to_date(root: Path) -> bool:
    """Whether `dvc status` finds every stage of dvc.yaml as dvc.lock recorded it (what
    `dvc repro` would skip); False outside a DVC project, without a dvc.lock, or when DVC
    fails (then the pipeline runs, as it would have)."""
    root = root.resolve()
    if not is_dvc_repo(root) or not (root / "dvc.lock").is_file():
        return False
    try:
        status = json.loads(_call(root, "status", "--json") or "{}")
    except (RuntimeError, OSError, ValueError) as err:
        log.info("`dvc status` failed, so the pipeline runs: %s", err)
        return False
    if status:
        log.debug("changed since dvc.lock: %s", ", ".join(sorted(status)))
    return status == {}


def init(root: Path) -> None:
    """`dvc init` in the git repository ``root``, analytics off (a demo's own workspace)."""
    _call(root, "init", "--quiet")
    _call(root, "config", "core.analytics", "false")


def add(root: Path, path: str) -> bool:
    """`dvc add` one file so it is versioned on arrival; False outside a DVC project."""
    root = root.resolve()
    if not is_dvc_repo(root):
        log.warning("%s is not a DVC project: %s is not versioned", root, path)
        return False
    _call(root, "add", "--quiet", path)
    return True


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def _git_call(root: Path, *args: str) -> str:
    proc = _git(root, *args)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`git {' '.join(args)}` failed in {root}:\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def commit_files(root: Path, paths: Sequence[str | Path], message: str) -> str | None:
    """Commit exactly ``paths`` (relative to ``root``, new files included) as one commit.

    Whatever else is modified or staged stays as it was (`git commit --only -- paths`), so a
    data version never sweeps up someone's unrelated work. Returns the new commit's sha;
    None outside a git repository or when ``paths`` hold no change. Raises RuntimeError when
    git has no identity to commit with, or git fails, saying what to do.
    """
    root = root.resolve()
    rel = [str(p) for p in paths]
    try:
        inside = _git(root, "rev-parse", "--is-inside-work-tree")
    except FileNotFoundError:
        log.warning("git is not installed: %s not committed", ", ".join(rel))
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        log.warning("%s is not a git repository: %s not committed", root, ", ".join(rel))
        return None
    quoted = " ".join(rel)
    ident = _git(root, "var", "GIT_COMMITTER_IDENT")
    if ident.returncode != 0:  # checked first, so a failed commit leaves the index untouched
        why = (ident.stderr.strip().splitlines() or ["identity unknown"])[-1]
        raise RuntimeError(
            f"git has no identity to commit {quoted} in {root} ({why}): "
            'set one with `git config user.name "Your Name"` and '
            "`git config user.email you@example.com` (add --global for every repository), "
            f"then commit them: git add {quoted} && git commit -m '{message}' -- {quoted}"
        )
    _git_call(root, "add", "--", *rel)
    if _git(root, "diff", "--cached", "--quiet", "--", *rel).returncode == 0:
        log.info("%s unchanged: nothing to commit", quoted)
        return None
    _git_call(root, "commit", "--quiet", "--only", "-m", message, "--", *rel)
    sha = _git_call(root, "rev-parse", "HEAD").strip()
    log.info("committed %s as %s: %s", quoted, sha[:12], message)
    return sha
