"""Fault-injection points: where a test may kill the process, as a crash would (issue #14).

``point("train:epoch")`` does nothing unless the environment variable ``NEGSAMP_FAULT``
names that point; then the process kills itself with SIGKILL on the spot: no ``finally``,
no ``atexit``, no flush, exactly what ``kill -9`` or the OOM killer does. The fault-injection
harness (tests/integration/test_faults.py) runs ``negsamp run`` with ``NEGSAMP_FAULT`` set,
then reruns it without and checks the rerun recovers.

``NEGSAMP_FAULT=<point>`` kills the first time the point is reached, ``<point>#<n>`` the
n-th time (counted in this process). Each point lives in the code where the moment it
names happens; :data:`POINTS` lists them. A point costs one dictionary look-up when no
fault is set, so the points stay in production code.
"""

from __future__ import annotations

import os
import signal

ENV = "NEGSAMP_FAULT"

POINTS = {
    "stage:<name>": "after stage <name> returned (its outputs written), before the next one",
    "sample-negatives:pool-written": "the pool written, its manifest not yet",
    "train:epoch": "after an epoch's checkpoint is written",
    "mlflow:migration": "inside MLflow's first schema migration of a new sqlite store",
    "register:model-logged": "the model logged to the run, no model version yet",
    "register:version": "a model version registered, its aliases not yet moved",
    "dvc:commit": "while `dvc commit` records the outputs (it is killed too)",
}

_seen: dict[str, int] = {}


def armed(name: str) -> bool:
    """Whether reaching point ``name`` now is the fault asked for (counts the visit)."""
    want = os.environ.get(ENV)
    if not want:
        return False
    target, _, nth = want.partition("#")
    if target != name:
        return False
    _seen[name] = _seen.get(name, 0) + 1
    return _seen[name] == (int(nth) if nth else 1)


def crash() -> None:
    """SIGKILL this process now (never returns)."""
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """Kill the process here when ``NEGSAMP_FAULT`` names point ``name``."""
    if armed(name):
        crash()
