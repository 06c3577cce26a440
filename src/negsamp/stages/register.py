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
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src

SPEC = StageSpec(
    name="register",
    # every section: the MLflow run logs the whole configuration (tracking.log_configuration)
    params=tuple(f.alias or name for name, f in Config.model_fields.items()),
    deps=(
        *rel(
            VARIANT.model_dir.parents[1],  # every configuration's model, history,
            VARIANT.metrics.parents[1],  # metrics,
            VARIANT.train_pool.parents[1],  # pools and the shared evaluation candidates
            SHARED.report_dir,  # the comparison the sweep's parent run holds
            SHARED.interactions,
            SHARED.user_ids,
            SHARED.item_ids,
            SHARED.train,
            SHARED.valid,
            SHARED.test,
            SHARED.split_report,
        ),
        "${data.path}",  # its md5 is a lineage tag
    ),
    code=src(
        "registry.py",  # MLflow: logging, registry, the pyfunc, the champion and its gate
        "tracking.py",
        "pyfunc.py",
        "champion.py",
        "promotion.py",
        "models",
        "metrics",
        "metrics_names.py",
        "evaluate.py",
        "interactions.py",
        "train.py",
        "sweep",
        "stages/register.py",
    ),
    outs=rel(SHARED.registration),
)

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


def champion_decision(cfg: Config, paths: Paths) -> Any:
    """Re-evaluate the current champion on this run's test split and candidates, and decide.

    None when there is no champion (the first model is promoted) or when
    ``registry.metric`` has no per-user values (then the logged metrics are compared).
    """
    import polars as pl

    from negsamp.metrics.artifacts import EvalFiles
    from negsamp.promotion import decide, evaluate_scorer
    from negsamp.stages.common import champion_scorer, positives
    from negsamp.train import resolve_device

    challenger = pl.read_parquet(EvalFiles(paths).per_user)
    if cfg.registry.metric not in challenger.columns:
        log.warning(
            "%s has no per-user values: the gate compares logged metrics", cfg.registry.metric
        )
        return None
    device = resolve_device(cfg.base.device)
    champion = champion_scorer(cfg, paths, device)
    if champion is None:
        return None
    version, scorer = champion
    result = evaluate_scorer(
        scorer,
        pl.read_parquet(paths.eval_candidates),
        pl.read_parquet(paths.test, columns=["user", "item"]),
        positives(paths, paths.train, paths.valid),
        positives(paths, paths.train),
        cfg.evaluate,
        cfg.base.seed,
        device,
    )
    d = decide(challenger, result.per_user, cfg.registry, cfg.base.seed)
    log.info("champion v%d re-evaluated on the current split: %s", version, d.reason)
    return d


@SPEC.enforce
def run(
    cfg: Config, paths: Paths = Paths(), extra_tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Register the best configuration's model; returns (and writes) the registration record.

    Every configuration is logged to MLflow (several: as child runs of one sweep run that
    holds the report stage's comparison); the best of ``sweep.configs`` by
    ``registry.metric`` is the candidate that goes through the champion/challenger gate
    (with one configuration, that one).
    """
    from negsamp.registry import log_and_register  # imports MLflow (about 1.3 s)

    best, scores = best_variant(cfg, paths)
    # data_snapshot: how many appended batches the model saw (the drift check's reference)
    tags = {"data_snapshot": str(len(cfg.data.appends)), **(extra_tags or {})}
    decision = champion_decision(cfg.variant(best), paths.for_variant(best))
    record = log_and_register(cfg, paths, tags, decision, best=best).to_dict()
    record["gate"] = decision.to_dict() if decision else None
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
