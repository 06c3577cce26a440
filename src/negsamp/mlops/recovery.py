"""What a killed registration left in MLflow, cleaned up by the next one (issue #14).

A registration that fails with an exception cleans up after itself (the gate's
``_clean_up``); one killed with SIGKILL cannot. It leaves its runs RUNNING forever and, when
killed between registering a version and moving the aliases, a version that no gate
decided. Every run the gate starts carries the host and pid of its process
(:data:`HOST_TAG`, :data:`PID_TAG`); before it logs anything, the next registration ends the
RUNNING runs of this host whose process is gone as KILLED, and deletes the model versions
of those runs that never got a decision (no ``decision`` tag: the aliases never moved to
them). Runs of other hosts, and of processes still alive, are left alone.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

log = logging.getLogger(__name__)

HOST_TAG, PID_TAG = "negsamp.host", "negsamp.pid"


def process_tags() -> dict[str, str]:
    """The tags that let a later registration tell this process's runs were orphaned."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def orphaned_runs(client: Any, experiment_id: str) -> list[Any]:
    """RUNNING runs of ``experiment_id`` started on this host by a process that is gone."""
    host = socket.gethostname()
    found = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
    )
    out = []
    for run in found:
        pid = run.data.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            out.append(run)
    return out


def clean_up_killed(client: Any, experiment_id: str, model_name: str) -> list[str]:
    """End the orphaned runs of ``experiment_id`` KILLED and delete their undecided versions
    of ``model_name``; returns what was done, one line each (also logged)."""
    done: list[str] = []
    orphans = orphaned_runs(client, experiment_id)
    held: set[str] = set()  # versions an alias names are never deleted (search omits aliases)
    if orphans and client.search_registered_models(f"name='{model_name}'"):
        held = {str(v) for v in client.get_registered_model(model_name).aliases.values()}
    for run in orphans:
        run_id = run.info.run_id
        for mv in client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'"):
            if "decision" not in (mv.tags or {}) and str(mv.version) not in held:
                client.delete_model_version(model_name, mv.version)
                done.append(f"deleted {model_name} v{mv.version}: its registration was killed")
        client.set_terminated(run_id, "KILLED")
        done.append(f"marked run {run_id} KILLED: process {run.data.tags[PID_TAG]} is gone")
    for line in done:
        log.warning("%s", line)
    return done
