"""The fault-injection points (issue #14): no-ops unless NEGSAMP_FAULT names them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from negsamp import faults


def test_a_point_is_a_no_op_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    assert not faults.armed("train:epoch")
    monkeypatch.setenv(faults.ENV, "stage:train")
    assert not faults.armed("train:epoch") and not faults.armed("stage:trai")


def test_nth_visit_is_the_one_armed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_seen", {})
    monkeypatch.setenv(faults.ENV, "train:epoch#3")
    assert [faults.armed("train:epoch") for _ in range(4)] == [False, False, True, False]


def test_a_named_point_kills_the_process_with_sigkill() -> None:
    code = "from negsamp import faults; faults.point('x'); faults.point('y'); print('alive')"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(faults.ENV, None)
    alive = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert alive.returncode == 0 and alive.stdout == "alive\n", alive.stderr
    env[faults.ENV] = "y"
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert killed.returncode == -signal.SIGKILL and killed.stdout == ""
