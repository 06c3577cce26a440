"""The task runner of ``base.engine``: Prefect's threads (local) or Ray (``prefect_ray``).

With ``base.engine: ray`` the flows' tasks, the per-configuration chains of a sweep
included, run as Ray tasks on the cluster of the ``ray`` section (one CPU each, so a
2-CPU instance trains two configurations at once, each at one thread), instead of in
threads of this process. The stages are the same functions; MLflow sees the same runs.
"""

from __future__ import annotations

from typing import Any, TypeVar

from negsamp.config import Config

F = TypeVar("F")


def bind(flow: F, cfg: Config) -> F:
    """``flow`` with the task runner of ``cfg.base.engine`` (unchanged for ``local``)."""
    if cfg.base.engine != "ray":
        return flow
    from negsamp.cluster import runtime

    runtime.ensure(cfg.ray)  # started or joined once; the runner reuses the connection
    from prefect_ray import RayTaskRunner

    return flow.with_options(task_runner=RayTaskRunner())  # type: ignore[attr-defined]


def runs_on(cfg: Config) -> dict[str, Any]:
    """Lineage of the engine the flow ran on: name, and the Ray cluster's size."""
    from negsamp import engine

    found = engine.describe(engine.Engine(cfg.base.engine, cfg.ray))
    return {f"negsamp.{k}": str(v) for k, v in found.items()}
