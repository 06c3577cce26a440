"""One writer per workspace: the lock ``negsamp run`` and every other writing command hold (#14).

Two ``negsamp run`` in the same project would write the same pools, models, MLflow runs and
dvc.lock at once. Each writing command holds an exclusive ``flock`` on
``<project>/.negsamp/run.lock`` while it runs; a second one started meanwhile is refused at
once with a one-sentence error naming the holder (its pid, command and start time, which
the holder writes into the file). The kernel releases a ``flock`` when its holder exits in
any way, SIGKILL included, so a crashed run never leaves the workspace locked: the file
stays, the lock does not. The descriptor is not inherited by child processes (``dvc
commit``), so a killed run's orphaned children cannot keep the lock either.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK = Path(".negsamp", "run.lock")


class WorkspaceBusy(RuntimeError):
    """Another negsamp command holds the workspace's lock."""


@contextlib.contextmanager
def held(root: Path, command: str) -> Iterator[Path]:
    """Hold the workspace lock of project ``root`` while the block runs; yields its path.

    Raises :class:`WorkspaceBusy` at once when another process holds it.
    """
    path = root.resolve() / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():  # negsamp's state folder ignores itself in git
        from negsamp.io import atomic_write  # polars: not at import (the CLI's --help)

        atomic_write(ignore, b"*\n")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise WorkspaceBusy(
                f"another negsamp command is writing this project's outputs ({holder}; lock "
                f"{path}): wait for it to finish, then run `negsamp {command}` again"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        os.pwrite(fd, f"pid {os.getpid()}, `negsamp {command}` since {stamp}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock (the kernel does the same on any exit)
