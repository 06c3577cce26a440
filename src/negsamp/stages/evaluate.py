"""Stage ``evaluate``: sampled, corrected and full-ranking metrics of one configuration.

Writes under data/metrics/<configuration>/ (see :class:`negsamp.metrics.artifacts.EvalFiles`):
metrics.json (every metric, flat), headline.json (the few ``dvc metrics show/diff`` print),
ci.json (bootstrap CIs), corrected.json (sampled vs corrected vs exact, with errors), per_user.parquet,
segments.csv (every metric by user activity and item popularity band) and plots/*.csv.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from negsamp.config import Config
from negsamp.device import resolve_device
from negsamp.io import atomic_write, write_json, write_parquet
from negsamp.metrics import report
from negsamp.metrics.artifacts import PLOTS, EvalFiles, headline
from negsamp.models import load_model
from negsamp.paths import Paths
from negsamp.stages.common import positives, require
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src

_OUT = EvalFiles(VARIANT)
SPEC = StageSpec(
    name="evaluate",
    # not evaluate.n_eval_neg: the candidates file (a dep) carries it
    params=(
        "base.seed",
        "base.device",
        "evaluate.ks",
        "evaluate.batch_size",
        "evaluate.plot_k",
        "evaluate.bootstrap",
        "evaluate.ci_level",
        "evaluate.correction_gamma",
        "evaluate.user_bands",
        "evaluate.item_bands",
    ),
    deps=rel(
        VARIANT.model_dir,
        SHARED.train,
        SHARED.valid,
        SHARED.test,
        SHARED.eval_candidates,
        SHARED.user_ids,
        SHARED.item_ids,
    ),
    code=src(
        "models",
        "metrics",
        "metrics_names.py",
        "evaluate.py",
        "interactions.py",
        "device.py",
        "rng.py",
        "stages/evaluate.py",
    ),
    outs=rel(
        _OUT.per_user,
        _OUT.segments,
        _OUT.metrics,
        _OUT.headline,
        _OUT.ci,
        _OUT.corrected,
        *(_OUT.plot(name) for name in PLOTS),
    ),
    per_variant=True,
)

log = logging.getLogger(__name__)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths(), variant: str = "default") -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    require(paths.model_dir, paths.train, paths.test, paths.eval_candidates)
    device = resolve_device(cfg.base.device)
    model = load_model(paths.model_dir, device=str(device))
    e = cfg.evaluate
    cands = pl.read_parquet(paths.eval_candidates)
    test = pl.read_parquet(paths.test, columns=["user", "item"])
    train = positives(paths, paths.train)
    seen = positives(paths, paths.train, paths.valid)
    result = report.evaluate_model(model, cands, test, train, seen, e, cfg.base.seed, device)

    out = EvalFiles(paths)
    write_parquet(out.per_user, result.per_user)
    write_json(out.ci, result.ci)
    write_json(out.corrected, result.corrected)
    atomic_write(out.segments, result.segments.write_csv().encode())
    for name in PLOTS:
        atomic_write(out.plot(name), result.plots[name].write_csv().encode())
    write_json(out.headline, headline(result.metrics, e.plot_k))
    write_json(out.metrics, result.metrics)  # last: its presence says the rest is complete
    k = e.plot_k
    log.info(
        "%s: sampled HR@%d %.4f | full Recall@%d %.4f (BV estimate %.4f) | coverage@%d %.3f",
        variant,
        k,
        result.metrics[f"sampled_hr_{k}"],
        k,
        result.metrics[f"full_recall_{k}"],
        result.metrics[f"bv_recall_{k}"],
        k,
        result.metrics[f"coverage_{k}"],
    )
    return result.metrics
