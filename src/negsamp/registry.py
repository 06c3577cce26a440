"""MLflow tracking, the model registry and the champion/challenger gate.

The only pure module that knows MLflow. :func:`log_and_register` checks every input
before it touches MLflow, logs one run (params, metrics, learning curve, artifacts,
lineage tags), logs a :class:`TopKRecommender` pyfunc, registers it and moves the
``champion`` / ``challenger`` / ``previous_champion`` aliases by :func:`decide`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from negsamp.config import Config
from negsamp.io import read_json
from negsamp.models import CONFIG_FILE, WEIGHTS_FILE
from negsamp.paths import Paths
from negsamp.pyfunc import (  # TopKRecommender: models logged before it moved unpickle it here
    IdMapError,
    TopKRecommender,
    input_example,
    read_id_map,
    requirements,
    signature,
)

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"


class RegistrationError(ValueError):
    """The inputs of the register stage are missing or invalid; nothing was logged."""


@dataclass(frozen=True)
class RegistrationResult:
    run_id: str
    experiment: str
    model_name: str
    version: int
    alias: str
    metric: str
    value: float
    champion_value_before: float | None
    champion_version_before: int | None
    promoted: bool
    reason: str
    tracking_uri: str
    parent_run_id: str | None = None  # the sweep's parent run when several configurations

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<abs root>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def decide(candidate: float, champion: float | None, greater_is_better: bool) -> bool:
    """Promote when there is no champion or the candidate is strictly better (ties keep it)."""
    if champion is None:
        return True
    return candidate > champion if greater_is_better else candidate < champion


def load_champion(model_name: str, alias: str = CHAMPION, uri: str | None = None) -> Any:
    """The pyfunc behind ``models:/<model_name>@<alias>`` (current tracking URI unless given)."""
    if uri:
        mlflow.set_tracking_uri(uri)
    return mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}")


# --------------------------------------------------------------------------- checks, lineage


def required_inputs(paths: Paths) -> dict[str, Path]:
    """Every file the register stage reads (declare them all as deps in dvc.yaml)."""
    return {
        "model config": paths.model_dir / CONFIG_FILE,
        "model weights": paths.model_dir / WEIGHTS_FILE,
        "train history": paths.train_history,
        "metrics": paths.metrics,
        "per-user metrics": paths.per_user,
        "train pool manifest": paths.train_pool_manifest,
        "eval candidates manifest": paths.eval_candidates_manifest,
        "train pool": paths.train_pool,
        "eval candidates": paths.eval_candidates,
        "user id map": paths.user_ids,
        "item id map": paths.item_ids,
        "interactions": paths.interactions,
        "train split": paths.train,
        "test split": paths.test,
        "split report": paths.split_report,
    }


def check_inputs(cfg: Config, paths: Paths) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Validate inputs before MLflow is touched; returns (numeric metrics, train history)."""
    missing = [f"{what} ({p})" for what, p in required_inputs(paths).items() if not p.is_file()]
    if missing:
        raise RegistrationError(
            "cannot register, missing inputs: " + "; ".join(missing) + " (run the earlier stages)"
        )
    try:
        raw, history = read_json(paths.metrics), read_json(paths.train_history)
        meta = read_json(paths.model_dir / CONFIG_FILE)
    except ValueError as err:
        raise RegistrationError(f"unreadable JSON input: {err}") from None
    if not isinstance(raw, dict):
        raise RegistrationError(f"{paths.metrics} must hold a JSON object of metric -> number")
    name, value = cfg.registry.metric, raw.get(cfg.registry.metric)
    if name not in raw:
        raise RegistrationError(
            f"{paths.metrics} has no {name!r} (registry.metric); re-run evaluate"
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RegistrationError(f"{paths.metrics}: {name}={value!r} is not a finite number")
    if not isinstance(history, list) or any("epoch" not in h or "loss" not in h for h in history):
        raise RegistrationError(f"{paths.train_history} must be a list of {{epoch, loss, ...}}")
    for what, p, col, n in (
        ("users", paths.user_ids, "user", meta["n_users"]),
        ("items", paths.item_ids, "item", meta["n_items"]),
    ):
        try:
            got = read_id_map(p, col).height
        except IdMapError as err:
            raise RegistrationError(str(err)) from None
        if got != n:
            raise RegistrationError(f"{p} maps {got} {what} but the model has {n}: re-run train")
    metrics = {
        k: float(v)
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    return metrics, history


# --------------------------------------------------------------------------- MLflow


def download_per_user(run_id: str, uri: str, dst: Path) -> Path:
    """Fetch run ``run_id``'s per-user metrics (``metrics/per_user.parquet``) into ``dst``."""
    from mlflow.artifacts import download_artifacts

    try:
        got = download_artifacts(
            run_id=run_id,
            artifact_path="metrics/per_user.parquet",
            dst_path=str(dst),
            tracking_uri=uri,
        )
    except MlflowException as err:
        raise RegistrationError(
            f"MLflow run {run_id!r} at {uri} has no metrics/per_user.parquet: {err.message}"
        ) from None
    return Path(got)


class _DropCloudpickleNotice(logging.Filter):
    """TopKRecommender pickles by reference to negsamp.pyfunc (no code in the pickle)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence the CloudPickle notice and the tqdm bars of MLflow's local artifact copies."""
    key, notice = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", _DropCloudpickleNotice()
    was_set = key in os.environ
    os.environ.setdefault(key, "false")
    logging.getLogger("mlflow.pyfunc").addFilter(notice)
    try:
        yield
    finally:
        logging.getLogger("mlflow.pyfunc").removeFilter(notice)
        if not was_set:
            os.environ.pop(key, None)


def _smoke_test(model_uri: str, example: pd.DataFrame) -> None:
    """Load the logged pyfunc and predict the example; MLflow's own check only warns."""
    out = mlflow.pyfunc.load_model(model_uri).predict(example)
    if list(out.columns) != ["user", "rank", "item", "score", "known_user"] or out.empty:
        raise RuntimeError(f"logged model {model_uri} predicted an unexpected frame:\n{out}")


def _champion(client: MlflowClient, name: str, metric: str) -> tuple[int | None, float | None]:
    """(version, metric value) of the current champion; (None, None) when there is none."""
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None, None
        raise
    try:
        value = client.get_run(mv.run_id).data.metrics.get(metric)
    except MlflowException:
        value = None
    return int(mv.version), value


def _gate(
    client: MlflowClient, cfg: Config, version: int, value: float, decision: Any = None
) -> tuple[Any, ...]:
    """Apply the aliases; returns (alias, promoted, reason, champion version, champion value).

    ``decision`` (a :class:`negsamp.promotion.Decision`, made on the current test split for
    both models) decides when given; otherwise the logged metrics are compared.
    """
    name, metric, gib = cfg.registry.model_name, cfg.registry.metric, cfg.registry.greater_is_better
    champ_v, champ_value = _champion(client, name, metric)
    if decision is not None and champ_v is not None:
        promoted, reason, champ_value = decision.promote, decision.reason, decision.champion
        reason = f"vs champion v{champ_v} on the current test split: {reason}"
        for key in ("diff", "p_value", "ci_low", "ci_high"):
            if getattr(decision, key) is not None:
                client.set_model_version_tag(
                    name, str(version), f"gate_{key}", repr(getattr(decision, key))
                )
    else:
        promoted = decide(value, champ_value, gib)
        if champ_v is None:
            reason = "no champion yet"
        elif champ_value is None:
            reason = f"champion v{champ_v} has no {metric} to compare; promoting"
        else:
            op = (">" if gib else "<") if promoted else ("<=" if gib else ">=")
            reason = f"{metric} {value:.6g} {op} champion v{champ_v} {champ_value:.6g}"
    alias = CHAMPION if promoted else CHALLENGER
    if promoted and champ_v is not None:
        client.set_registered_model_alias(name, PREVIOUS, str(champ_v))
    client.set_registered_model_alias(name, alias, str(version))
    for key, val in (("metric", metric), ("metric_value", repr(value)), ("decision", alias)):
        client.set_model_version_tag(name, str(version), key, val)
    client.set_model_version_tag(name, str(version), "reason", reason)
    return alias, promoted, reason, champ_v, champ_value


def _log_model(paths: Paths) -> str:
    """Log the pyfunc into the active run, check it predicts; returns its model URI."""
    with _quiet_mlflow():
        info = mlflow.pyfunc.log_model(
            name="recommender",
            python_model=TopKRecommender(),
            artifacts={
                "model": str(paths.model_dir.resolve()),
                "user_ids": str(paths.user_ids.resolve()),
                "item_ids": str(paths.item_ids.resolve()),
                "train": str(paths.train.resolve()),
            },
            signature=signature(paths),
            input_example=input_example(paths),
            pip_requirements=requirements(),
        )
        _smoke_test(info.model_uri, input_example(paths))
    return info.model_uri


def _end_all(status: str) -> None:
    while mlflow.active_run() is not None:
        mlflow.end_run(status)


def log_and_register(
    cfg: Config,
    paths: Paths = Paths(),
    extra_tags: dict[str, str] | None = None,
    decision: Any = None,
    best: str | None = None,
) -> RegistrationResult:
    """Log every configuration of ``cfg.sweep.configs``, register ``best``'s pyfunc, gate it.

    One configuration: one run. Several: a parent run ``sweep-...`` holding the report
    stage's comparison, with a nested child run per configuration; the best child's model
    is registered as ``cfg.registry.model_name`` and goes through the champion gate
    (``decision``, made on the current test split, decides when given).

    Raises RegistrationError (nothing logged) when an input of any configuration is
    missing or invalid. Any later failure ends the runs FAILED and removes the model
    version it may have created: the registry is never touched by a failed run.
    """
    from negsamp import tracking

    variants = cfg.variants
    best = best or variants[0]
    if best not in variants:
        raise RegistrationError(f"configuration {best!r} is not in sweep.configs {variants}")
    inputs = {v: check_inputs(cfg.variant(v), paths.for_variant(v)) for v in variants}
    sweep = len(variants) > 1
    if sweep and not paths.comparison.is_file():
        raise RegistrationError(
            f"cannot register a sweep: {paths.comparison} is missing (run `negsamp stage report`)"
        )
    reg = cfg.registry
    extra = {k: str(v) for k, v in (extra_tags or {}).items()}
    uri = tracking_uri(paths.root)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp_id = tracking.experiment_id(client, reg.experiment, uri, paths.root)
    version, parent_id = None, None
    try:
        if sweep:
            commit, dirty = tracking.git_state(paths.root)
            name = f"sweep-{len(variants)}x-{commit[:7]}-{time.strftime('%Y%m%d-%H%M%S')}"
            tags = {"negsamp.kind": "sweep", "git_commit": commit, "git_dirty": dirty} | extra
            tags["configs"] = ",".join(variants)
            parent_id = mlflow.start_run(experiment_id=exp_id, run_name=name, tags=tags).info.run_id
        for v in variants:
            vcfg, vpaths = cfg.variant(v), paths.for_variant(v)
            tags = tracking.lineage_tags(vcfg, vpaths, v) | extra
            if sweep:
                tags |= {"negsamp.kind": "sweep-child", "sweep_run_id": parent_id}
            s = vcfg.sampler.active
            run_name = v if sweep else f"{s.name}-n{getattr(s, 'n_neg', 'b')}-{vcfg.model.name}"
            run = mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags, nested=sweep)
            tracking.log_configuration(client, run.info.run_id, vcfg, vpaths, *inputs[v])
            if v == best:
                run_id, best_cfg, best_tags = run.info.run_id, vcfg, tags
                model_uri = _log_model(vpaths)
                mv = mlflow.register_model(model_uri, reg.model_name, tags=best_tags)
                version = int(mv.version)
                value = inputs[v][0][reg.metric]
                alias, promoted, reason, champ_v, champ_value = _gate(
                    client, best_cfg, version, value, decision
                )
                mlflow.set_tags({"registry.version": str(version), "registry.alias": alias})
            mlflow.end_run("FINISHED")
        if parent_id:
            tracking.log_comparison(client, parent_id, paths)
            client.set_tag(parent_id, "registry.version", str(version))
            client.set_tag(parent_id, "registry.alias", alias)
            mlflow.end_run("FINISHED")
    except BaseException:
        if version is not None:
            try:
                client.delete_model_version(reg.model_name, str(version))
            except MlflowException:
                log.exception("could not remove %s v%s after a failure", reg.model_name, version)
        _end_all("FAILED")
        if parent_id:
            client.set_terminated(parent_id, "FAILED")
        raise
    return RegistrationResult(
        run_id=run_id,
        experiment=reg.experiment,
        model_name=reg.model_name,
        version=version,
        alias=alias,
        metric=reg.metric,
        value=value,
        champion_value_before=champ_value,
        champion_version_before=champ_v,
        promoted=promoted,
        reason=reason,
        tracking_uri=uri,
        parent_run_id=parent_id,
    )


# --------------------------------------------------------------------------- rollback


def rollback(model_name: str, uri: str) -> dict[str, Any]:
    """Give ``champion`` back to the ``previous_champion`` version, in one step.

    The version that was champion becomes ``previous_champion``, so a second rollback
    undoes the first. Raises RegistrationError when there is nothing to roll back to.
    """
    client = MlflowClient(uri)
    try:
        prev = client.get_model_version_by_alias(model_name, PREVIOUS)
    except MlflowException as err:
        raise RegistrationError(
            f"{model_name} has no {PREVIOUS!r} alias in {uri}: nothing to roll back to"
        ) from err
    current, _ = _champion(client, model_name, "")
    client.set_registered_model_alias(model_name, CHAMPION, prev.version)
    if current is not None:
        client.set_registered_model_alias(model_name, PREVIOUS, str(current))
    reason = f"rollback: v{prev.version} is champion again (was v{current})"
    client.set_model_version_tag(model_name, prev.version, "reason", reason)
    log.info("%s: %s", model_name, reason)
    return {
        "model_name": model_name,
        "champion": int(prev.version),
        "previous_champion": current,
        "reason": reason,
    }
