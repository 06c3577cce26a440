"""Stage ``register``: log the run to MLflow, register the model, apply the champion gate.

Reads what train and evaluate wrote (see :func:`negsamp.registry.required_inputs`)
and writes ``data/registry/registration.json`` with the run id, the model version,
its alias and the decision, so DVC and the flow can see what was registered.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from negsamp.config import Config
from negsamp.io import read_json, write_json
from negsamp.paths import Paths
from negsamp.stages.common import require

log = logging.getLogger(__name__)


def best_variant(cfg: Config, paths: Paths) -> tuple[str, dict[str, float]]:
    """The configuration with the best ``registry.metric``, and every configuration's value."""
    from negsamp.registry import RegistrationError

    name = cfg.registry.metric
    scores: dict[str, float] = {}
    for v in cfg.variants:
        f = paths.for_variant(v).metrics
        require(f)
        value = read_json(f).get(name)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise RegistrationError(
                f"{f} has no finite {name!r} (registry.metric); re-run evaluate"
            )
        scores[v] = float(value)
    # ties go to the first name in sort order, as in the report stage's comparison table
    sign = -1.0 if cfg.registry.greater_is_better else 1.0
    return min(scores, key=lambda v: (sign * scores[v], v)), scores


def reevaluate_champion(cfg: Config, paths: Paths, champion: Any) -> Any:
    """The champion's :class:`negsamp.metrics.report.Evaluation` on this run's test split.

    ``champion`` (a :class:`negsamp.mlops.champion.Champion`) is scored in the current ids
    through :class:`negsamp.champion.RemappedScorer`, on the same test split, evaluation
    candidates and exclusions as the challenger was by the evaluate stage.
    """
    import polars as pl

    from negsamp.champion import RemappedScorer
    from negsamp.promotion import evaluate_scorer
    from negsamp.stages.common import positives
    from negsamp.train import resolve_device

    device = resolve_device(cfg.base.device)
    current = pl.read_parquet(paths.user_ids), pl.read_parquet(paths.item_ids)
    scorer = RemappedScorer.build(champion.model, champion.users, champion.items, *current, device)
    return evaluate_scorer(
        scorer,
        pl.read_parquet(paths.eval_candidates),
        pl.read_parquet(paths.test, columns=["user", "item"]),
        positives(paths, paths.train, paths.valid),
        positives(paths, paths.train),
        cfg.evaluate,
        cfg.base.seed,
        device,
    )


def run(
    cfg: Config, paths: Paths = Paths(), extra_tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Register the best configuration's model; returns (and writes) the registration record.

    Every configuration is logged to MLflow (several: as child runs of one sweep run that
    holds the report stage's comparison); the best of ``sweep.configs`` by
    ``registry.metric`` is the candidate that goes through the champion/challenger gate
    (with one configuration, that one): :func:`negsamp.mlops.gate.register`.
    """
    from negsamp.mlops.gate import register  # imports MLflow (about 1.3 s)

    best, scores = best_variant(cfg, paths)
    # data_snapshot: how many appended batches the model saw (the drift check's reference)
    tags = {"data_snapshot": str(len(cfg.data.appends)), **(extra_tags or {})}
    bcfg, bpaths = cfg.variant(best), paths.for_variant(best)

    def reevaluate(champion: Any) -> Any:
        return reevaluate_champion(bcfg, bpaths, champion)

    result, decision = register(cfg, paths, reevaluate, tags, best=best)
    record = result.to_dict()
    record["gate"] = decision.to_dict()
    record["config"] = best
    record["candidates"] = scores
    write_json(paths.registration, record)
    before = record["champion_value_before"]
    log.info(
        "registered %s v%d as %s: %s=%.4f (champion before: %s) - %s",
        record["model_name"],
        record["version"],
        record["alias"],
        record["metric"],
        record["value"],
        "none" if before is None else f"{before:.4f}",
        record["reason"],
    )
    return record
