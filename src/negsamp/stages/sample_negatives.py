"""Stage ``sample-negatives``: the training pool of one sampler configuration, plus its manifest."""

from __future__ import annotations

import logging
from typing import Any

from negsamp.config import Config
from negsamp.io import md5_file, write_json, write_parquet
from negsamp.paths import Paths
from negsamp.samplers import build_sampler
from negsamp.samplers.pool import pool_statistics, training_pool
from negsamp.stages.common import positives

log = logging.getLogger(__name__)


def run(cfg: Config, paths: Paths = Paths(), variant: str = "default") -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    train = positives(paths, paths.train)
    sampler = build_sampler(cfg.sampler, train)
    s = cfg.sampler
    pool = training_pool(sampler, train, s.n_neg, s.pool_epochs, cfg.base.seed)
    write_parquet(paths.train_pool, pool)
    manifest = {
        "kind": "train_pool",
        "sampler": s.model_dump(mode="json"),
        "seed": cfg.base.seed,
        "rows": pool.height,
        "positives": train.nnz,
        "users": int((train.user_degrees() > 0).sum()),
        "n_neg": s.n_neg,
        "pool_epochs": s.pool_epochs,
        "negatives": pool.height * s.n_neg,
        "content_md5": md5_file(paths.train_pool),
        "data_md5": {"train": md5_file(paths.train)},
        "draws": sampler.stats.draws,
        "rejected_fraction": sampler.stats.rejected_fraction,
        "sampler_statistics": sampler.describe(),
        "statistics": pool_statistics(pool["neg_items"].to_numpy(), train),
    }
    write_json(paths.train_pool_manifest, manifest)
    log.info(
        "%s pool: %d positives x %d negatives x %d epochs, %.4f%% of draws rejected",
        s.name,
        train.nnz,
        s.n_neg,
        s.pool_epochs,
        100 * sampler.stats.rejected_fraction,
    )
    return manifest
