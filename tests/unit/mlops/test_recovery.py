"""What a registration killed with SIGKILL left in MLflow is cleaned up by the next (#14)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from negsamp.mlops import recovery


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _run(client: Any, exp: str, pid: int, host: str | None = None) -> str:
    tags = recovery.process_tags() | {recovery.PID_TAG: str(pid)}
    if host:
        tags[recovery.HOST_TAG] = host
    return client.create_run(exp, tags=tags).info.run_id


def test_runs_of_dead_processes_end_killed_and_their_undecided_versions_go(store: Any) -> None:
    import os

    client = store
    exp = client.create_experiment("negsamp")
    client.create_registered_model("negsamp")
    dead, dead_decided = _run(client, exp, _dead_pid()), _run(client, exp, _dead_pid())
    alive = _run(client, exp, os.getppid())  # pytest's parent: alive
    elsewhere = _run(client, exp, _dead_pid(), host="another-host")
    undecided = client.create_model_version("negsamp", "file:///m1", run_id=dead).version
    decided = client.create_model_version("negsamp", "file:///m2", run_id=dead_decided).version
    client.set_model_version_tag("negsamp", decided, "decision", "champion")
    # killed after the alias moved, before the decision tag: an alias holder is kept
    aliased_run = _run(client, exp, _dead_pid())
    aliased = client.create_model_version("negsamp", "file:///m3", run_id=aliased_run).version
    client.set_registered_model_alias("negsamp", "champion", aliased)

    done = recovery.clean_up_killed(client, exp, "negsamp")

    status = {r: client.get_run(r).info.status for r in (dead, dead_decided, alive, elsewhere)}
    assert status == {
        dead: "KILLED",
        dead_decided: "KILLED",
        alive: "RUNNING",
        elsewhere: "RUNNING",
    }
    left = [v.version for v in client.search_model_versions("name='negsamp'")]
    assert sorted(left, key=int) == [decided, aliased] and undecided not in left
    assert sorted(done) == [
        f"deleted negsamp v{undecided}: its registration was killed",
        *sorted(f"marked run {r} KILLED: process {client.get_run(r).data.tags['negsamp.pid']} "
                "is gone" for r in (dead, dead_decided, aliased_run)),
    ]  # fmt: skip
    assert recovery.clean_up_killed(client, exp, "negsamp") == []  # nothing left to do
