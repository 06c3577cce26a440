"""Stage ``register``: log the run to MLflow, register the model, apply the champion gate.

Reads what train and evaluate wrote (see :func:`negsamp.mlops.inputs.required_inputs`)
and writes ``data/registry/registration.json`` with the run id, the model version,
its alias and the decision, so DVC and the flow can see what was registered.

With ``registry.refit`` (issue #13) a promoted configuration is refit on every interaction
(:mod:`negsamp.refit`) for the epochs early stopping kept, before the registry is written;
the refit goes to ``data/registry/refit/model`` (a DVC output, with ``refit.json``) and is
what the version serves and ``served_model`` in registration.json names (the recommend
stage reads it). A challenger that loses is not refit.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from negsamp.config import Config
from negsamp.io import md5_file, read_json, write_json
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
            SHARED.item_attributes,  # the refit's attribute samplers
            SHARED.item_release,  # the refit's exclude_unreleased with first_seen: release
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
        "refit.py",  # the refit of a promoted configuration, and what it trains with:
        "train.py",
        "early_stop.py",
        "sequential.py",
        "sequences.py",
        "samplers",
        "stages/sample_negatives.py",  # teacher_hard's teacher, item features and times
        "stages/register.py",
    ),
    outs=rel(SHARED.registration, SHARED.refit_dir),
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


def refit_best(cfg: Config, paths: Paths, best: str) -> tuple[Path, dict[str, str]]:
    """Refit configuration ``best`` on the whole log; write it to ``data/registry/refit``.

    Returns the model folder and the version's tags: ``refit_epochs`` (the kept epochs of
    its history.json), ``refit_snapshot`` (``len(data.appends)``: the batches it saw),
    ``refit_positives`` and ``refit_data_md5`` (interactions.parquet's md5).
    """
    import polars as pl

    from negsamp.device import resolve_device
    from negsamp.models import save_model
    from negsamp.refit import refit
    from negsamp.stages.common import catalog_size
    from negsamp.sweep.select import kept_epochs

    bcfg, bpaths = cfg.variant(best), paths.for_variant(best)
    require(bpaths.train_history, paths.interactions)
    epochs = kept_epochs(
        read_json(bpaths.train_history), bcfg.train.monitor, bcfg.train.restore_best
    )
    from negsamp.stages.sample_negatives import sampler_deps

    n_users, n_items = catalog_size(paths)
    # teacher_hard's teacher, item features, and (exclude_unreleased) the log's times
    deps = sampler_deps(bcfg.sampler.active, bcfg, bpaths, n_items, paths.interactions)
    result = refit(
        bcfg.model.active,
        bcfg.sampler.active,
        bcfg.train,
        pl.read_parquet(paths.interactions),
        n_users,
        n_items,
        epochs,
        bcfg.base.seed,
        resolve_device(bcfg.base.device),
        **deps,
    )
    shutil.rmtree(paths.refit_dir, ignore_errors=True)
    save_model(result.model, paths.refit_model)
    tags = {
        "refit_epochs": str(result.epochs),
        "refit_snapshot": str(len(cfg.data.appends)),
        "refit_positives": str(result.positives),
        "refit_data_md5": md5_file(paths.interactions),
    }
    write_json(paths.refit_manifest, {"refit": True, "config": best, **tags})
    log.info("refit %s on every interaction: %s", best, tags)
    return paths.refit_model, tags


def _kept_refit(paths: Paths, best: str) -> bool:
    """Whether ``data/registry/refit`` holds ``best``'s refit of the current log: what an
    identical champion (not registered again) serves, so the recommend stage keeps it."""
    if not (paths.refit_manifest.is_file() and paths.refit_model.is_dir()):
        return False
    made = read_json(paths.refit_manifest)
    same_log = made.get("refit_data_md5") == md5_file(paths.interactions)
    return bool(made.get("refit")) and made.get("config") == best and same_log


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
    tags = {"data_snapshot": str(len(cfg.data.appends)), "negsamp.engine": cfg.base.engine}
    tags |= extra_tags or {}  # the flows add the Ray cluster's size (flows.engine.runs_on)
    bcfg, bpaths = cfg.variant(best), paths.for_variant(best)

    def reevaluate(champion: Any) -> Any:
        return reevaluate_champion(bcfg, bpaths, champion)

    made: list[dict[str, str]] = []

    def refit() -> tuple[Path, dict[str, str]]:
        folder, refit_tags = refit_best(cfg, paths, best)
        made.append(refit_tags)
        return folder, refit_tags

    result, decision = register(
        cfg, paths, reevaluate, tags, best=best, refit=refit if cfg.registry.refit else None
    )
    record = result.to_dict()
    record["gate"] = decision.to_dict()
    record["config"] = best
    record["candidates"] = scores
    if made:
        record["refit"] = {"refit": True, "config": best, **made[0]}
    elif cfg.registry.refit and not result.registered and _kept_refit(paths, best):
        record["refit"] = read_json(paths.refit_manifest)  # the identical champion's own
    else:  # never serve a previous run's refit
        shutil.rmtree(paths.refit_dir, ignore_errors=True)
        why = "registry.refit is false" if not cfg.registry.refit else "not promoted"
        record["refit"] = {"refit": False, "config": best, "reason": why}
        write_json(paths.refit_manifest, record["refit"])
    served = paths.refit_model if record["refit"]["refit"] else bpaths.model_dir
    record["served_model"] = served.relative_to(paths.root).as_posix()  # recommend reads it
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
