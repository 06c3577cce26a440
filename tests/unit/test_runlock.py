"""Two negsamp commands at once in one workspace: the second is refused (issue #14, point 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from negsamp.runlock import LOCK, WorkspaceBusy, held

NEGSAMP = str(Path(sys.executable).with_name("negsamp"))


def _holder(root: Path) -> subprocess.Popen[str]:
    """Another process holding ``root``'s lock until it is killed."""
    code = (
        "import sys, time; from pathlib import Path; from negsamp.runlock import held\n"
        f"with held(Path({str(root)!r}), 'run'):\n    print('held', flush=True); time.sleep(600)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_second_writer_is_refused_naming_the_first_and_sigkill_frees_the_lock(
    tmp_path: Path,
) -> None:
    first = _holder(tmp_path)
    try:
        with pytest.raises(WorkspaceBusy) as got, held(tmp_path, "run"):
            pass
        msg = str(got.value)
        assert f"(pid {first.pid}, `negsamp run` since " in msg
        assert msg.endswith("wait for it to finish, then run `negsamp run` again")
        assert str(tmp_path / LOCK) in msg
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with held(tmp_path, "run") as path:  # the kernel released the killed holder's lock
        assert f"pid {os.getpid()}, `negsamp run`" in path.read_text()
    assert (tmp_path / ".negsamp" / ".gitignore").read_text() == "*\n"


def test_negsamp_run_refuses_while_another_run_holds_the_workspace(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("base: {seed: 1}\n")
    first = _holder(tmp_path)
    try:
        t0 = time.monotonic()
        res = subprocess.run(
            [NEGSAMP, "run", "--params", str(params), "--set", "base.seed=2"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert res.returncode == 1 and time.monotonic() - t0 < 60
    line = res.stderr.strip()
    assert line.startswith("error: another negsamp command is writing this project's outputs")
    assert f"pid {first.pid}" in line and "Traceback" not in res.stderr
    assert params.read_text() == "base: {seed: 1}\n"  # refused before anything was written
