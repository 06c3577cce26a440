"""Stage ``evaluate``: sampled and full-ranking metrics -> metrics.json + per-user Parquet."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from negsamp import evaluate as ev
from negsamp.config import Config
from negsamp.io import write_json, write_parquet
from negsamp.metrics_names import headline_names
from negsamp.models import load_model
from negsamp.paths import Paths
from negsamp.stages.common import positives, require
from negsamp.train import resolve_device

log = logging.getLogger(__name__)


def run(cfg: Config, paths: Paths = Paths(), variant: str = "default") -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    require(paths.model_dir, paths.test, paths.eval_candidates)
    device = resolve_device(cfg.base.device)
    model = load_model(paths.model_dir, device=str(device))
    e = cfg.evaluate
    cands = pl.read_parquet(paths.eval_candidates)
    test = pl.read_parquet(paths.test, columns=["user", "item"])
    seen = positives(paths, paths.train, paths.valid)
    s_ranks = ev.sampled_ranks(model.score, cands, device, e.batch_size)
    f_ranks = ev.full_ranks(model.score_all, seen, test, device, e.batch_size)
    per_user = ev.sampled_metrics(s_ranks, cands["user"].to_numpy(), e.ks).join(
        ev.full_metrics(f_ranks, test["user"].to_numpy(), e.ks),
        on="user",
        how="full",
        coalesce=True,
    )
    summary = ev.summarize(per_user)
    metrics = {name: summary[name] for name in headline_names(e.ks)}
    metrics["n_test_users"] = per_user.height
    write_parquet(paths.per_user, per_user)
    write_json(paths.metrics, metrics)
    log.info("metrics: %s", {k: round(v, 4) for k, v in metrics.items() if "_10" in k})
    return metrics
