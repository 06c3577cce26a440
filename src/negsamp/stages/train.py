"""Stage ``train``: fit the configured model on positives + pool negatives."""

from __future__ import annotations

import logging
import time
from typing import Any

import polars as pl

from negsamp import train as trainer
from negsamp.config import Config
from negsamp.io import write_json
from negsamp.models import build_model, save_model
from negsamp.paths import Paths
from negsamp.stages.common import catalog_size, require

log = logging.getLogger(__name__)


def run(cfg: Config, paths: Paths = Paths(), variant: str = "default") -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    require(paths.train_pool)
    device = trainer.resolve_device(cfg.base.device)
    n_users, n_items = catalog_size(paths)
    gen = trainer.seed_generator(cfg.base.seed, purpose=2)
    model = build_model(cfg.model, n_users, n_items, generator=gen)
    pool = trainer.Pool.from_frame(pl.read_parquet(paths.train_pool), device)
    log.info(
        "training %s on %s: %d positives, %d epochs",
        cfg.model.name,
        device,
        pool.users.shape[0],
        cfg.train.epochs,
    )
    t0 = time.perf_counter()
    history = trainer.fit(model, pool, cfg.train, cfg.base.seed, device)
    seconds = time.perf_counter() - t0
    save_model(model, paths.model_dir)
    write_json(paths.train_history, history)
    return {"device": str(device), "seconds": seconds, "final_loss": history[-1]["loss"]}
