"""Start or join the Ray cluster ``base.engine: ray`` runs on, once per process.

``ray.address: null`` starts a local instance bound to 127.0.0.1, sized by ``ray.num_cpus``
(default: the cores this process may use) and ``ray.object_store_mb``; it is shut down when
the process exits (or by :func:`shutdown`). ``auto`` or ``ray://host:10001`` joins an
existing cluster (a VM's, or KubeRay's head service) and never shuts it down.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

from negsamp.config.run import RayCfg

log = logging.getLogger(__name__)

_lock = threading.RLock()
_started = False  # this process started the local instance it is connected to


# environment variables the driver hands to its workers (read when the connection starts)
FORWARDED = ("MLFLOW_", "NEGSAMP_", "DVC_", "GX_", "PREFECT_API_")


class ClusterError(RuntimeError):
    """The Ray engine cannot run: Ray is not installed or the cluster cannot be reached."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ClusterError(
            'base.engine=ray needs Ray, which is not installed: pip install -e ".[cluster]", '
            "or set base.engine=local"
        ) from err
    return ray


def ensure(cfg: RayCfg) -> Any:
    """The ``ray`` module, connected to the cluster of ``cfg`` (started or joined once)."""
    global _started
    ray = _ray()
    with _lock:
        if ray.is_initialized():
            return ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
        # the workers run the stages: they log to this process's MLflow store and see its
        # negsamp/DVC/GX settings, on a local instance and on a remote cluster alike
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": env},
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": False,
            "configure_logging": False,
        }
        try:
            if cfg.address is None:
                # single-node mode: Ray otherwise swaps 127.0.0.1 for the machine's address
                # and its GCS, raylet and object manager listen there; a local instance is
                # for this machine only (ray_constants reads the variable at import, so set
                # the module's flag too)
                os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
                ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
                cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
                kwargs |= {
                    "num_cpus": cfg.num_cpus or cores or os.cpu_count() or 1,
                    "_node_ip_address": "127.0.0.1",
                }
                if cfg.object_store_mb:
                    kwargs["object_store_memory"] = cfg.object_store_mb * 2**20
                ray.init(**kwargs)
                _started = True
                atexit.register(shutdown)
            else:
                ray.init(address=cfg.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = cfg.address or "a local instance"
            raise ClusterError(
                f"could not start or join the Ray cluster ({where}): {err}; check ray.address "
                "in params.yaml (null starts a local instance) or set base.engine=local"
            ) from err
        log.info("ray: %s", cluster_size(cfg))
    return ray


def shutdown() -> None:
    """Disconnect; stop the local instance if this process started it."""
    global _started
    try:
        import ray
    except ImportError:
        return
    with _lock:
        if ray.is_initialized():
            ray.shutdown()
        _started = False


def cluster_size(cfg: RayCfg) -> dict[str, Any]:
    """Nodes, CPUs and GPUs of the cluster (joined first), and its address for lineage."""
    ray = ensure(cfg)
    res = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {
        "ray_address": cfg.address or "local",
        "ray_nodes": len(nodes),
        "ray_cpus": float(res.get("CPU", 0.0)),
        "ray_gpus": float(res.get("GPU", 0.0)),
    }


def n_shards(cfg: RayCfg) -> int:
    """``ray.shards``, or 2 per CPU of the cluster."""
    if cfg.shards:
        return cfg.shards
    ray = ensure(cfg)
    return max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))


def trained_in() -> str:
    """Where the calling code runs: ``ray worker on node <id>`` inside a Ray worker, else
    ``this process`` (Ray is never imported for the answer)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return "this process"
    ctx = ray.get_runtime_context()
    if ctx.worker.mode != ray.WORKER_MODE:
        return "this process"
    return f"ray worker on node {ctx.get_node_id()[:12]}"
