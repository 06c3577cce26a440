"""A local Ray instance for tests: 127.0.0.1, 2 CPUs, a small object store; shut down after,
with a check that none of its processes (raylet, GCS, workers) is left behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

SMALL_RAY = {"ray": {"num_cpus": 2, "object_store_mb": 150}}


def _processes_of(session_dir: str) -> list[str]:
    import psutil

    left = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if session_dir in cmd:
            left.append(cmd[:120])
    return left


@contextmanager
def local_ray(num_cpus: int = 2, object_store_mb: int = 150) -> Iterator[object]:
    """The ``ray`` module connected to a fresh local instance started by negsamp's runtime
    (as ``base.engine: ray`` with ``ray.address: null`` starts it)."""
    from negsamp.cluster import runtime
    from negsamp.config.run import RayCfg

    ray = runtime.ensure(RayCfg(num_cpus=num_cpus, object_store_mb=object_store_mb))
    session = ray.get_runtime_context().get_node_id()  # noqa: F841 - connected
    session_dir = ray._private.worker._global_node.get_session_dir_path()
    try:
        yield ray
    finally:
        runtime.shutdown()
        deadline = time.monotonic() + 20
        while (left := _processes_of(session_dir)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"Ray processes left after shutdown: {left}"
