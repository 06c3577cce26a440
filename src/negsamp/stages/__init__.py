"""Pipeline stages: ``stages.<name>.run(cfg, paths) -> summary``.

Stages are the only code that reads or writes files. dvc.yaml calls each one
through the CLI (``negsamp stage <name>``); the Prefect flow calls the same
functions as tasks. ``ORDER`` is the pipeline order both runners follow.

Each stage module declares what it reads and writes in ``SPEC`` (a
:class:`~negsamp.stages.spec.StageSpec`, which dvc.yaml must match), and its ``run`` is
decorated with ``@SPEC.enforce``: whichever route calls it, the stage sees the
configuration scoped to its declared keys (:mod:`negsamp.stages.scope`).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

ORDER = (
    "synthesize",
    "ingest",
    "validate",
    "split",
    "candidates",
    "sample-negatives",
    "train",
    "evaluate",
    "report",
    "register",
    "recommend",
)


# Stages run once per configuration in sweep.configs (DVC: foreach; Prefect: mapped).
PER_VARIANT = frozenset({"sample-negatives", "train", "evaluate"})


def module(name: str) -> ModuleType:
    """The stage module for ``name`` (imported lazily: the CLI's --help stays instant)."""
    if name not in ORDER:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(ORDER)}")
    return importlib.import_module("negsamp.stages." + name.replace("-", "_"))


def run_stage(name: str, cfg: Any, paths: Any, variant: str | None = None, **extra: Any) -> Any:
    """Run stage ``name``: the one entry both runners (the CLI that dvc.yaml calls, and the
    Prefect flow) go through, by way of :func:`negsamp.runner.run_stage`, which adds live
    MLflow tracking around it. Per-configuration stages take ``variant``, a name of
    ``sweep.configs``; ``extra`` reaches the stage (the register stage's lineage tags).
    The stage sees ``cfg`` as its SPEC scopes it (configuration ``variant`` resolved first)."""
    from negsamp import faults

    stage = module(name)
    if name in PER_VARIANT:
        if variant is None:
            raise ValueError(f"stage {name!r} runs per configuration: name one of sweep.configs")
        out = stage.run(cfg, paths, variant, **extra)
    else:
        out = stage.run(cfg, paths, **extra)
    faults.point(f"stage:{name}")  # a crash between stages (tests/integration/test_faults.py)
    return out
