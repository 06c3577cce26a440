"""Stage ``register``: log the run to MLflow, register the model, apply the champion gate.

Reads what train and evaluate wrote (see :func:`negsamp.mlops.inputs.required_inputs`)
and writes ``data/registry/registration.json`` with the run id, the model version,
its alias and the decision, so DVC and the flow can see what was registered.
"""

from __future__ import annotations

import logging
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
        "mlops",  # MLflow: logging, registry, the pyfunc, the champion and its gate
        "champion.py",
        "device.py",
        "rng.py",
        "promotion.py",
        "models",
        "metrics",
        "metrics_names.py",
        "evaluate.py",
        "interactions.py",
        "sweep",
        "stages/register.py",
    ),
    outs=rel(SHARED.registration),
)

log = logging.getLogger(__name__)


def best_variant(cfg: Config, paths: Paths) -> tuple[str, dict[str, float | None]]:
    """The configuration chosen on validation, and every configuration's validation value.

    The choice of :func:`negsamp.sweep.select.choose_for` (the report stage's too): the
    highest ``valid_<train.monitor>`` at the epoch whose weights were kept, read from each
    configuration's history.json; None marks one that cannot be chosen (no finite value).
    The test split does not choose (issue #12): the gate compares the chosen configuration
    with the champion on it, once.
    """
    from negsamp.mlops.errors import RegistrationError
    from negsamp.sweep.select import SelectionError, choose_for

    histories = {}
    for v in cfg.variants:
        f = paths.for_variant(v).train_history
        require(f)
        histories[v] = read_json(f)
    try:
        chosen = choose_for(cfg, histories)
    except SelectionError as e:
        raise RegistrationError(f"cannot choose a configuration to register: {e}") from e
    log.info("registering %s: %s", chosen.chosen, chosen.describe())
    return chosen.chosen, chosen.values


def reevaluate_champion(cfg: Config, paths: Paths, champion: Any) -> Any:
    """The champion's :class:`negsamp.metrics.report.Evaluation` on this run's test split.

    ``champion`` (a :class:`negsamp.mlops.champion.Champion`) is scored in the current ids
    through :class:`negsamp.champion.RemappedScorer`, on the same test split, evaluation
    candidates and exclusions as the challenger was by the evaluate stage.
    """
    import polars as pl

    from negsamp.champion import RemappedScorer
    from negsamp.device import resolve_device
    from negsamp.promotion import evaluate_scorer
    from negsamp.stages.common import positives

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


@SPEC.enforce
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
    if not result.registered:
        return record  # the gate logged why: identical to the champion
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
