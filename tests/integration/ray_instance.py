"""A local Ray instance for tests, as ``base.engine: ray`` with ``ray.address: null`` starts
it (negsamp.cluster.runtime): 2 CPUs, a small object store, listening on 127.0.0.1 only;
shut down after, with a check that none of its processes (raylet, GCS, workers) is left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psutil

SMALL_RAY = {"ray": {"num_cpus": 2, "object_store_mb": 150}}


def _listening(procs: list[psutil.Process]) -> set[str]:
    """The addresses the processes listen on (IPv4-mapped IPv6 shown as IPv4)."""
    found = set()
    for p in procs:
        try:
            conns = p.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {c.laddr.ip.removeprefix("::ffff:") for c in conns if c.status == "LISTEN"}
    return found


@contextmanager
def local_ray(num_cpus: int = 2, object_store_mb: int = 150) -> Iterator[object]:
    """The ``ray`` module connected to a fresh local instance started by negsamp's runtime."""
    from negsamp.cluster import runtime
    from negsamp.config.run import RayCfg

    before = {p.pid for p in psutil.Process().children(recursive=True)}  # a Prefect server...
    ray = runtime.ensure(RayCfg(num_cpus=num_cpus, object_store_mb=object_store_mb))
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    names = {p.name() for p in started}
    assert {"raylet", "gcs_server"} <= names, f"no local Ray instance among {names}"
    assert _listening(started) <= {"127.0.0.1", "::1"}, _listening(started)
    try:
        yield ray
    finally:
        runtime.shutdown()
        _, alive = psutil.wait_procs(started, timeout=20)
        assert not alive, f"Ray processes left behind: {[(p.pid, p.name()) for p in alive]}"
