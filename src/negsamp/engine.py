"""Where a stage's heavy work runs: ``base.engine`` (``local`` or ``ray``) and the ``ray`` section.

Like ``base.threads``, the engine never changes a result: a pool sampled in Ray shards has
the bytes of the one sampled in process, and sharded evaluation gives the same metrics.
So it is a runtime setting, not a stage parameter: every stage activates it from the
whole configuration before it is scoped (:meth:`negsamp.stages.spec.StageSpec.enforce`),
and the stages ask :func:`current` where to run. Only ``train.distributed.workers`` changes
a model, and the train stage declares it. This module never imports Ray
(:mod:`negsamp.cluster` does, and only when the engine is ``ray``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from negsamp.config.run import RayCfg


@dataclass(frozen=True)
class Engine:
    name: str = "local"  # local | ray
    ray: RayCfg = field(default_factory=RayCfg)

    @property
    def is_ray(self) -> bool:
        return self.name == "ray"


_current = Engine()
_lock = threading.Lock()


def activate(cfg: Any) -> Engine:
    """Make ``cfg.base.engine`` / ``cfg.ray`` (a whole :class:`~negsamp.config.Config`) the
    engine of this process's stages; returns it."""
    global _current
    with _lock:
        _current = Engine(cfg.base.engine, cfg.ray)
    return _current


def current() -> Engine:
    """The engine stages of this process run on."""
    return _current


def describe(eng: Engine | None = None) -> dict[str, Any]:
    """The engine (default: :func:`current`) for lineage: name, and for ray the cluster's
    size (nodes, CPUs, GPUs)."""
    eng = current() if eng is None else eng
    if not eng.is_ray:
        return {"engine": "local"}
    from negsamp.cluster import runtime

    return {"engine": "ray", **runtime.cluster_size(eng.ray)}


def lineage(tasks: int | None = None) -> dict[str, Any]:
    """What a manifest records of where its work ran (never part of a result's bytes):
    ``tasks`` Ray tasks (user-range shards) on the cluster :func:`describe` names, or, for
    None, this process: ``{"engine": "local", "shards": 1}``."""
    if tasks is None:
        return {"engine": "local", "shards": 1}
    return describe() | {"shards": tasks}


def trained_in() -> str:
    """``this process``, or ``ray worker on node <id>`` where a stage runs as a Ray task
    (the flows' RayTaskRunner); lineage of a training run."""
    import sys

    if "ray" not in sys.modules:
        return "this process"
    from negsamp.cluster import runtime

    return runtime.trained_in()
