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
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from negsamp.config import Config, dump, flatten
from negsamp.io import md5_file, read_json
from negsamp.metrics.artifacts import EvalFiles
from negsamp.models import CONFIG_FILE, WEIGHTS_FILE
from negsamp.paths import Paths

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"
DEFAULT_K = 10
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
_SCORE_CELLS = 1 << 26  # users x items scored at once in predict (256 MB of float32)
_RAW_NAMES = ("original", "raw", "original_id", "raw_id", "id")


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


# --------------------------------------------------------------------------- pyfunc model


def read_id_map(path: str | Path, dense: str) -> pl.DataFrame:
    """An id map as ``dense`` (Int64 code) and ``raw`` (original id, original dtype)."""
    df = pl.read_parquet(path)
    others = [c for c in df.columns if c != dense]
    if dense not in df.columns or not others:
        raise RegistrationError(
            f"{path}: expected a {dense!r} dense-id column and a raw-id column, got {df.columns}"
        )
    prefer = [f"{dense}_id", f"raw_{dense}", f"{dense}_raw", *_RAW_NAMES]
    raw = next((c for c in prefer if c in others), others[0])
    return df.select(pl.col(dense).cast(pl.Int64).alias("dense"), pl.col(raw).alias("raw"))


class TopKRecommender(mlflow.pyfunc.PythonModel):
    """Top-K items for original user ids; unknown users get the most popular items.

    Input: a DataFrame with a ``user`` column of original ids; ``params={"k": K}``.
    Output: one row per (user, rank): user, rank (1..K), item (original id), score,
    known_user. Training positives are never recommended to a known user; unknown
    users get the K most popular training items with score = training user count.
    """

    def load_context(self, context: Any) -> None:
        from negsamp.interactions import Interactions
        from negsamp.models import load_model

        art = context.artifacts
        self._model = load_model(art["model"], device="cpu")
        n_users, n_items = self._model.n_users, self._model.n_items
        self._users = read_id_map(art["user_ids"], "user")
        self._raw_items = read_id_map(art["item_ids"], "item").sort("dense")["raw"].to_numpy()
        train = pl.read_parquet(art["train"], columns=["user", "item"])
        self._seen = Interactions.from_frame(train, n_users, n_items)
        counts = self._seen.item_counts()
        self._popular = np.argsort(-counts, kind="stable")
        self._pop_scores = counts[self._popular].astype(np.float32)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k") or DEFAULT_K)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if "user" not in model_input.columns:
            raise ValueError(f"input needs a 'user' column, got {list(model_input.columns)}")
        raw_in = model_input["user"].to_numpy()
        query = pl.DataFrame({"raw": pl.Series(raw_in, strict=False)}).with_columns(
            pl.col("raw").cast(self._users["raw"].dtype, strict=False),
            pos=pl.int_range(pl.len()),
        )
        dense = query.join(self._users, on="raw", how="left").sort("pos")["dense"]
        known = dense.is_not_null().to_numpy()
        ids = dense.fill_null(0).to_numpy().astype(np.int64)
        kk = min(k, self._model.n_items)
        items = np.empty((ids.size, kk), np.int64)
        scores = np.empty((ids.size, kk), np.float32)
        items[~known], scores[~known] = self._popular[:kk], self._pop_scores[:kk]
        rows = np.flatnonzero(known)
        step = max(1, _SCORE_CELLS // self._model.n_items)
        for lo in range(0, rows.size, step):
            r = rows[lo : lo + step]
            items[r], scores[r] = self._model.recommend(ids[r], kk, exclude=self._seen)
        ok = np.isfinite(scores)  # -inf pads users with fewer than K unseen items
        row, col = np.nonzero(ok)
        return pd.DataFrame(
            {
                "user": raw_in[row],
                "rank": (col + 1).astype(np.int64),
                "item": self._raw_items[items[row, col]],
                "score": scores[row, col].astype(np.float64),
                "known_user": known[row],
            }
        )


def _col_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "long"
    return "double" if dtype.is_float() else "string"


def _signature(paths: Paths) -> ModelSignature:
    ut = _col_type(read_id_map(paths.user_ids, "user")["raw"].dtype)
    it = _col_type(read_id_map(paths.item_ids, "item")["raw"].dtype)
    out = [ColSpec(ut, "user"), ColSpec("long", "rank"), ColSpec(it, "item")]
    out += [ColSpec("double", "score"), ColSpec("boolean", "known_user")]
    return ModelSignature(
        inputs=Schema([ColSpec(ut, "user")]),
        outputs=Schema(out),
        params=ParamSchema([ParamSpec("k", "long", DEFAULT_K)]),
    )


def _input_example(paths: Paths) -> pd.DataFrame:
    """Two original user ids: saved with the model so serving clients see the request shape."""
    return read_id_map(paths.user_ids, "user").head(2).select(user="raw").to_pandas()


def _requirements() -> list[str]:
    """Pinned versions of what predict imports (negsamp itself must be installed too)."""
    from importlib.metadata import version

    pkgs = ("mlflow", "torch", "numpy", "pandas", "polars", "pyarrow", "pydantic", "pyyaml")
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]  # "+cpu": any torch build


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
        if (got := read_id_map(p, col).height) != n:
            raise RegistrationError(f"{p} maps {got} {what} but the model has {n}: re-run train")
    metrics = {
        k: float(v)
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    return metrics, history


def git_state(root: Path) -> tuple[str, str]:
    """(commit, "true"/"false" dirty in tracked files); ("unknown", "unknown") outside a repo."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read-only: never refresh the index
    try:
        kw: dict[str, Any] = dict(cwd=root, capture_output=True, text=True, timeout=20, env=env)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], check=True, **kw).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "-uno"], check=True, **kw)
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return commit, str(bool(status.stdout.strip())).lower()


def lineage_tags(cfg: Config, paths: Paths) -> dict[str, str]:
    """Git state, plug-in names and DVC-compatible md5s of the data the model came from."""
    commit, dirty = git_state(paths.root)
    tags = {"git_commit": commit, "git_dirty": dirty, "sampler": cfg.sampler.name}
    tags |= {"model": cfg.model.name, "n_neg": str(cfg.sampler.n_neg)}
    files = {"data": paths.interactions, "train": paths.train, "test": paths.test}
    files |= {"train_pool": paths.train_pool, "eval_candidates": paths.eval_candidates}
    files |= {"valid": paths.valid, "weights": paths.model_dir / WEIGHTS_FILE}
    tags |= {f"{k}_md5": md5_file(p) for k, p in files.items() if p.is_file()}
    return tags


# --------------------------------------------------------------------------- MLflow


def _experiment_id(client: MlflowClient, name: str, uri: str, root: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        loc = (root / "mlruns").resolve().as_uri() if uri.startswith("sqlite:") else None
        try:
            return client.create_experiment(name, artifact_location=loc)
        except MlflowException:  # created concurrently by a parallel register
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage != "active":
        raise RegistrationError(
            f"MLflow experiment {name!r} is deleted: `mlflow experiments restore "
            f"--experiment-id {exp.experiment_id}` or set registry.experiment"
        )
    return exp.experiment_id


def _log_run(
    client: MlflowClient,
    run_id: str,
    cfg: Config,
    paths: Paths,
    metrics: dict[str, float],
    history: list[dict[str, Any]],
) -> None:
    params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten(dump(cfg)).items()}
    mlflow.log_params(params)
    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, 0) for k, v in (metrics | evaluation_reports(paths)).items()]
    for h in history:
        for src, key in (("loss", "train_loss"), ("seconds", "train_epoch_seconds")):
            if isinstance(h.get(src), int | float) and math.isfinite(h[src]):
                batch.append(Metric(key, float(h[src]), now, int(h["epoch"])))
    for lo in range(0, len(batch), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=batch[lo : lo + 1000])
    mlflow.log_dict(dump(cfg), "config/params.json")
    for p, folder in (
        (paths.metrics, "metrics"),
        (paths.per_user, "metrics"),
        (paths.train_history, "train"),
        (paths.train_pool_manifest, "pools"),
        (paths.eval_candidates_manifest, "pools"),
        (paths.split_report, "split"),
        (paths.validation_result, "data"),
        (paths.ingest_report, "data"),
    ):
        if p.is_file():
            mlflow.log_artifact(str(p), artifact_path=folder)
    for p in EvalFiles(paths).reports():  # CIs, corrected estimates, segments, plot tables
        if p.is_file():
            folder = "metrics/plots" if p.parent.name == "plots" else "metrics"
            mlflow.log_artifact(str(p), artifact_path=folder)


def evaluation_reports(paths: Paths) -> dict[str, float]:
    """The numbers of ci.json and corrected.json as ``<metric>.<field>`` MLflow metrics.

    The same keys ``dvc metrics show`` prints for those files, e.g. ``full_recall_10.ci_low``
    and ``full_recall_10.bv_error``; absent or unreadable files give nothing.
    """
    out: dict[str, float] = {}
    files = EvalFiles(paths)
    for f in (files.ci, files.corrected):
        try:
            raw = read_json(f) if f.is_file() else {}
        except ValueError:
            log.warning("%s is not valid JSON: its numbers are not logged", f)
            continue
        for name, fields in raw.items() if isinstance(raw, dict) else ():
            for field, v in fields.items() if isinstance(fields, dict) else ():
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                    out[f"{name}.{field}"] = float(v)
    return out


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
    """TopKRecommender pickles by reference to negsamp.registry (no code in the pickle)."""

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


def log_and_register(
    cfg: Config,
    paths: Paths = Paths(),
    extra_tags: dict[str, str] | None = None,
    decision: Any = None,
) -> RegistrationResult:
    """Log one MLflow run, register its pyfunc as ``cfg.registry.model_name``, gate aliases.

    Raises RegistrationError (nothing logged) when an input is missing or invalid. Any
    later failure ends the run FAILED and removes the model version it may have created.
    """
    metrics, history = check_inputs(cfg, paths)
    reg = cfg.registry
    value = metrics[reg.metric]
    tags = lineage_tags(cfg, paths) | {k: str(v) for k, v in (extra_tags or {}).items()}
    uri = tracking_uri(paths.root)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp_id = _experiment_id(client, reg.experiment, uri, paths.root)
    run_name = f"{cfg.sampler.name}-n{cfg.sampler.n_neg}-{cfg.model.name}"
    run = mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags)
    run_id, version = run.info.run_id, None
    try:
        _log_run(client, run_id, cfg, paths, metrics, history)
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
                signature=_signature(paths),
                input_example=_input_example(paths),
                pip_requirements=_requirements(),
            )
            _smoke_test(info.model_uri, _input_example(paths))
        mv = mlflow.register_model(info.model_uri, reg.model_name, tags=tags)
        version = int(mv.version)
        alias, promoted, reason, champ_v, champ_value = _gate(client, cfg, version, value, decision)
        mlflow.set_tags({"registry.version": str(version), "registry.alias": alias})
    except BaseException:
        if version is not None:
            try:
                client.delete_model_version(reg.model_name, str(version))
            except MlflowException:
                log.exception("could not remove %s v%s after a failure", reg.model_name, version)
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
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
