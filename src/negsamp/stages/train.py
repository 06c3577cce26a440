"""Stage ``train``: fit the configured model; write the model folder and history.json.

Gradient models read their configuration's pool (``in_batch`` reads only the training
positives), rank the validation item after every epoch for early stopping, and write a
checkpoint each epoch beside the model (``data/models/<config>/checkpoint.pt``, not a DVC
output: DVC would delete it before the stage runs, which is exactly when ``train.resume``
needs it). ``ials`` reads the training positives with their counts and no pool. ``mixed``
with ``max_item_share`` also reads the ``sampler.exclude`` positives (valid.parquet for
``train+valid``): the cap's redraws avoid them, as the pool's draws did. With
``train.distributed.workers > 1`` the same trainer runs on Ray Train workers
(:mod:`negsamp.cluster.training`) and the model is saved here all the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from negsamp import engine
from negsamp import train as trainer
from negsamp.config import Config
from negsamp.device import resolve_device
from negsamp.interactions import Interactions
from negsamp.io import write_json
from negsamp.models import save_model
from negsamp.paths import Paths
from negsamp.stages.common import catalog_size, excluded_positives, require
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src

SPEC = StageSpec(
    name="train",
    # sampler: batch-side samplers act in the trainer (in_batch.logq_correction, hard.k, ...);
    # evaluate.n_eval_neg / batch_size: the validation candidates early stopping ranks
    params=(
        "base.seed",
        "base.device",
        "model",
        "sampler",
        "train",
        "evaluate.n_eval_neg",
        "evaluate.batch_size",
        "sweep.configs.${key}",
    ),
    # train: ials and in_batch read the positives, recency weights; valid: early stopping
    # test: kept out of the validation item's candidates
    deps=rel(
        VARIANT.train_pool,
        SHARED.train,
        SHARED.valid,
        SHARED.test,
        SHARED.user_ids,
        SHARED.item_ids,
    ),
    code=src(
        "models",
        "samplers",
        "interactions.py",
        "train.py",
        "early_stop.py",
        "sequential.py",
        "sequences.py",
        "evaluate.py",
        "device.py",
        "rng.py",
        "stages/train.py",
        "cluster/training.py",
    ),
    outs=rel(VARIANT.model_dir, VARIANT.train_history),
    per_variant=True,
)

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_path(paths: Paths) -> Path:
    """Where configuration ``paths.variant`` keeps its checkpoint (beside the model folder)."""
    return paths.model_dir.parent / CHECKPOINT_FILE


@SPEC.enforce
def run(
    cfg: Config,
    paths: Paths = Paths(),
    variant: str = "default",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics).

    ``on_epoch`` gets each epoch's history row as it ends (the runner's live MLflow run)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    device = resolve_device(cfg.base.device)
    n_users, n_items = catalog_size(paths)
    require(paths.train)
    frame = pl.read_parquet(paths.train)
    valid = (
        pl.read_parquet(paths.valid, columns=["user", "item"]) if paths.valid.is_file() else None
    )
    # the test items stay out of the validation item's candidates (issue #18)
    test = pl.read_parquet(paths.test, columns=["user", "item"]) if valid is not None else None

    def pool() -> pl.DataFrame:
        require(paths.train_pool)
        return pl.read_parquet(paths.train_pool)

    def exclude() -> Interactions:
        return excluded_positives(cfg, paths, Interactions.from_frame(frame, n_users, n_items))

    t0 = time.perf_counter()
    workers = cfg.train.distributed.workers
    if workers > 1:  # the config allows it only with base.engine: ray
        from negsamp.cluster import training

        model, history = training.fit(
            engine.current().ray,
            cfg,
            frame,
            n_users,
            n_items,
            valid=valid,
            test=test,
            pool=pool,
            on_epoch=on_epoch,
        )
    else:
        model, history = trainer.train_configured(
            cfg,
            frame,
            n_users,
            n_items,
            device,
            valid=valid,
            pool=pool,
            exclude=exclude,
            test=test,
            checkpoint=checkpoint_path(paths),
            on_epoch=on_epoch,
        )
    seconds = time.perf_counter() - t0
    save_model(model, paths.model_dir)
    write_json(paths.train_history, history)
    out = {"device": str(device), "seconds": seconds, "epochs": len(history), "workers": workers}
    if workers > 1:  # where it ran: Ray Train workers, their torch.distributed backend
        out |= {"device": "ray", "backend": history[-1]["backend"]}
    out["final_loss"] = history[-1]["loss"]
    out.update({k: v for k, v in history[-1].items() if k.startswith("valid_")})
    return out
