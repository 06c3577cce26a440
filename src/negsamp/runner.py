"""The stage runner both routes use: :func:`negsamp.stages.run_stage`, with MLflow following
the training live (:mod:`negsamp.mlops.live`).

`negsamp stage <name>` (what dvc.yaml runs) and the Prefect flow's tasks call
:func:`run_stage` here. Tracking belongs to the runner, not to the stages: no stage module
imports it, so it is no input of a stage's outputs (dvc.yaml's code deps stay what the
stage computes with), and a stage called directly runs untracked.
"""

from __future__ import annotations

from typing import Any

from negsamp import stages


def run_stage(name: str, cfg: Any, paths: Any, variant: str | None = None, **extra: Any) -> Any:
    """:func:`negsamp.stages.run_stage`; ``train`` with its MLflow run open while it trains,
    ``evaluate`` adding its headline metrics to that run (best effort, see
    :mod:`negsamp.mlops.live`)."""
    if name == "train" and variant is not None:
        return _train_tracked(cfg, paths, variant, **extra)
    out = stages.run_stage(name, cfg, paths, variant, **extra)
    if name == "evaluate" and variant is not None:
        from negsamp.mlops import live

        live.after_evaluate(cfg, paths, variant)
    return out


def _train_tracked(cfg: Any, paths: Any, variant: str, **extra: Any) -> Any:
    from negsamp.mlops import live

    run = live.start_training(cfg, paths, variant)
    if run is None:
        return stages.run_stage("train", cfg, paths, variant, **extra)
    try:
        out = stages.run_stage("train", cfg, paths, variant, on_epoch=run.epoch, **extra)
    except BaseException:
        run.finish(ok=False)
        raise
    run.finish(ok=True)
    return out
