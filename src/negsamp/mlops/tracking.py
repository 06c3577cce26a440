"""MLflow runs: a configuration's, a sweep's parent, a drift check's.

What a configuration run holds: the flattened config as params; tags ``sampler``, ``model``,
``n_neg``, ``config`` and the lineage (:mod:`negsamp.mlops.lineage`); a short list of metrics
(:func:`curated`: the headline metrics at ``evaluate.plot_k`` and at 10, the registry metric
with its CI, the counts), sampler statistics (``sampler.*``), training time and throughput
(``train.*``) and the learning curve (per epoch ``curve/train_loss``, ``curve/valid_*``,
``curve/train_pairs_per_second``...); every other number of the evaluation (each metric at each K,
CIs, corrected estimates) as one MLflow table, ``metrics/all_metrics.json`` (issue #15: not
hundreds of metric series); and the files behind them as artifacts. The run is the one the
train stage opened live (:mod:`negsamp.mlops.live`) when there is one.
A sweep's parent run holds the comparison report (``comparison/``) and the best
configuration. A drift check's run (experiment ``<registry.experiment>-drift``) holds the
drift report and its numbers.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException

from negsamp.config import Config, dump, flatten
from negsamp.io import md5_file, read_json
from negsamp.metrics.artifacts import EvalFiles
from negsamp.mlops import store
from negsamp.mlops.errors import RegistrationError
from negsamp.paths import Paths

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
CURVE_PREFIX = "curve/"  # the learning curve's section on the run page
CURVE_TAG = "negsamp.curve"  # "complete": the live run logged every epoch of history.json
_CURVE = {"loss": "train_loss", "seconds": "train_epoch_seconds"}
_CURVE |= {"pairs_per_second": "train_pairs_per_second"}
# sampler statistics of the pool manifest logged as metrics (manifest key -> metric)
_SAMPLER_STATS = {
    ("rejected_fraction",): "sampler.rejected_fraction",
    ("negatives",): "sampler.negatives",
    ("timing", "seconds"): "sampler.seconds",
    ("timing", "negatives_per_second"): "sampler.negatives_per_second",
    ("statistics", "js_to_target"): "sampler.js_to_target",
    ("statistics", "kl_to_target"): "sampler.kl_to_target",
    ("statistics", "tail_share_of_negatives"): "sampler.tail_share_of_negatives",
    ("statistics", "tail_share_of_target"): "sampler.tail_share_of_target",
    ("statistics", "distinct_items"): "sampler.distinct_items",
    ("statistics", "max_item_share"): "sampler.max_item_share",
}


def finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# MLflow 3's UI opens an experiment without this tag on its GenAI view (traces, issue #15);
# "custom_model_development" opens it on the runs table and their charts.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(client: MlflowClient, name: str, uri: str, root: Path) -> str:
    """The id of experiment ``name``, created (artifacts under ``<root>/mlruns``) if absent."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        loc = (root / "mlruns").resolve().as_uri() if uri.startswith("sqlite:") else None
        try:
            return client.create_experiment(name, artifact_location=loc, tags=EXPERIMENT_TAGS)
        except MlflowException:  # created concurrently by a parallel register
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage != "active":
        raise RegistrationError(
            f"MLflow experiment {name!r} is deleted: `mlflow experiments restore "
            f"--experiment-id {exp.experiment_id}` or set registry.experiment"
        )
    for k, v in EXPERIMENT_TAGS.items():  # experiments made before the tag was set
        if k not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, k, v)
    return exp.experiment_id


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
                if finite(v):
                    out[f"{name}.{field}"] = float(v)
    return out


def sampler_metrics(paths: Paths) -> dict[str, float]:
    """Sampler statistics of the pool manifest (``sampler.*``); nothing when it is absent."""
    try:
        manifest = read_json(paths.train_pool_manifest)
    except (OSError, ValueError):
        return {}
    out = {}
    for keys, name in _SAMPLER_STATS.items():
        v: Any = manifest
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if finite(v):
            out[name] = float(v)
    return out


def training_metrics(history: list[dict[str, Any]]) -> dict[str, float]:
    """``train.seconds``, ``train.epochs`` and ``train.pairs_per_second`` over the whole run."""
    from negsamp.sweep.table import throughput

    seconds, pairs = throughput(history)
    out = {"train.epochs": float(len(history)), "train.seconds": seconds}
    return out if pairs is None else out | {"train.pairs_per_second": pairs}


def curve(history: list[dict[str, Any]], now: int) -> list[Metric]:
    """The learning curve of ``history`` rows as metrics, one step per epoch: every number of
    a row (loss, seconds, throughput, ``valid_*``, a curriculum's value) as
    ``curve/<name>``. The prefix makes them one section of the run page, which MLflow's UI
    shows before the unprefixed metrics (issue #15: the curve among the first charts)."""
    out = []
    for h in history:
        for src, v in h.items():
            if src != "epoch" and finite(v):
                out.append(
                    Metric(CURVE_PREFIX + _CURVE.get(src, src), float(v), now, int(h["epoch"]))
                )
    return out


def curated(cfg: Config, metrics: dict[str, float]) -> dict[str, float]:
    """The metrics a run shows as charts: the headline metrics at ``evaluate.plot_k`` and at
    10 (what drift's performance signal reads), the registry metric, and the counts
    (``n_test_users``...: names that are no metric of :func:`headline_names`)."""
    from negsamp.metrics.artifacts import headline
    from negsamp.metrics_names import headline_names

    keep = set(headline(metrics, cfg.evaluate.plot_k)) | set(headline(metrics, 10))
    keep |= {cfg.registry.metric} | (metrics.keys() - set(headline_names(cfg.evaluate.ks)))
    return {k: float(v) for k, v in metrics.items() if k in keep and finite(v)}


ALL_METRICS_TABLE = "metrics/all_metrics.json"


def metrics_table(metrics: dict[str, float], reports: dict[str, float]) -> dict[str, list]:
    """Every metric of metrics.json with its CI and corrected estimates, one row each: the
    columns of ``metrics/all_metrics.json`` (``metric``, ``value``, then ``ci_low``,
    ``ci_high``, ``bv``... where ci.json and corrected.json hold them)."""
    fields = sorted({k.rsplit(".", 1)[1] for k in reports}, key=lambda f: (f != "ci_low", f))
    names = [k for k, v in metrics.items() if finite(v)]
    table: dict[str, list] = {"metric": names, "value": [float(metrics[n]) for n in names]}
    for f in fields:
        table[f] = [reports.get(f"{n}.{f}") for n in names]
    return table


def read_metrics_table(client: MlflowClient, run_id: str) -> dict[str, dict[str, Any]]:
    """``metrics/all_metrics.json`` of run ``run_id``: metric -> {value, ci_low, ...}."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, ALL_METRICS_TABLE, tmp)
        doc = json.loads(Path(path).read_text())
    cols = doc["columns"]
    return {row[0]: dict(zip(cols[1:], row[1:], strict=True)) for row in doc["data"]}


def log_configuration(
    client: MlflowClient,
    run_id: str,
    cfg: Config,
    paths: Paths,
    metrics: dict[str, float],
    history: list[dict[str, Any]],
) -> None:
    """Log one configuration's params, metrics, learning curve and files into run ``run_id``.

    ``run_id`` may be the train stage's live run (:mod:`negsamp.mlops.live`): the params it
    holds already are not logged again, nor the curve when it is complete.
    """
    logged = client.get_run(run_id).data
    params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten(dump(cfg, active_only=True)).items()}
    items = [Param(k, v) for k, v in params.items() if k not in logged.params]
    for lo in range(0, len(items), 100):  # log_batch takes at most 100 params
        client.log_batch(run_id, params=items[lo : lo + 100])
    now = int(time.time() * 1000)
    reports = evaluation_reports(paths)
    scalars = curated(cfg, metrics) | sampler_metrics(paths) | training_metrics(history)
    m = cfg.registry.metric
    scalars |= {
        f"{m}.{f}": reports[f"{m}.{f}"] for f in ("ci_low", "ci_high") if f"{m}.{f}" in reports
    }
    batch = [Metric(k, v, now, 0) for k, v in scalars.items()]
    if logged.tags.get(CURVE_TAG) != "complete":
        batch += curve(history, now)
    for lo in range(0, len(batch), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=batch[lo : lo + 1000])
    client.log_table(run_id, data=metrics_table(metrics, reports), artifact_file=ALL_METRICS_TABLE)
    client.log_dict(run_id, dump(cfg), "config/params.json")
    log_datasets(client, run_id, paths)
    pool_plot = paths.train_pool_manifest.with_name("negative_popularity.png")
    for p, folder in (
        (paths.metrics, "metrics"),
        (paths.per_user, "metrics"),
        (paths.train_history, "train"),
        (paths.train_pool_manifest, "pools"),
        (pool_plot, "pools"),
        (paths.eval_candidates_manifest, "pools"),
        (paths.split_report, "split"),
        (paths.validation_result, "data"),
        (paths.ingest_report, "data"),
    ):
        if p.is_file():
            client.log_artifact(run_id, str(p), artifact_path=folder)
    for p in EvalFiles(paths).reports():  # CIs, corrected estimates, segments, plot tables
        if p.is_file():
            folder = "metrics/plots" if p.parent.name == "plots" else "metrics"
            client.log_artifact(run_id, str(p), artifact_path=folder)


def log_datasets(client: MlflowClient, run_id: str, paths: Paths) -> None:
    """The run's data as MLflow datasets (the run page's Datasets panel, issue #15): the
    interactions, the split and the negative pool, each named, with its file as source and
    its md5 (DVC's hash of the file) as digest; metadata only, the files stay with DVC."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    inputs = []
    for name, path, context in (
        ("interactions", paths.interactions, "data"),
        ("train", paths.train, "training"),
        ("train_pool", paths.train_pool, "training"),
        ("valid", paths.valid, "validation"),
        ("test", paths.test, "evaluation"),
        ("eval_candidates", paths.eval_candidates, "evaluation"),
    ):
        if path.is_file():
            with warnings.catch_warnings():  # "local file" is registered twice in MLflow 3
                warnings.simplefilter("ignore", UserWarning)
                source = resolve_dataset_source(path.resolve().as_uri())
            ds = MetaDataset(source, name=name, digest=md5_file(path))
            tags = [InputTag("mlflow.data.context", context)]
            inputs.append(DatasetInput(ds._to_mlflow_entity(), tags))
    if inputs:
        client.log_inputs(run_id, datasets=inputs)


def log_comparison(client: MlflowClient, run_id: str, paths: Paths) -> dict[str, Any]:
    """Log the report stage's folder into the sweep's parent run; returns comparison.json."""
    comparison = read_json(paths.comparison)
    client.log_artifacts(run_id, str(paths.report_dir), artifact_path="comparison")
    best = next(r for r in comparison["rows"] if r["best"])
    now = int(time.time() * 1000)
    batch = [Metric(f"best.{k}", float(v), now, 0) for k, v in best["values"].items() if finite(v)]
    batch.append(Metric("configurations", float(len(comparison["rows"])), now, 0))
    client.log_batch(run_id, metrics=batch)
    client.set_tag(run_id, "best_config", comparison["best"])
    return comparison


def end_runs(status: str) -> None:
    """End every run the fluent API has open (a failure inside a nested run leaves two).

    A run whose end cannot be recorded (tracking server gone) is logged and left RUNNING.
    """
    while mlflow.active_run() is not None:
        try:
            mlflow.end_run(status)  # pops the run before it calls the server
        except Exception:  # noqa: BLE001 - cleaning up after another error
            log.warning("could not mark an MLflow run %s", status, exc_info=True)


def log_drift(
    uri: str,
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    metrics: dict[str, float],
    files: list[Path],
) -> str:
    """Log a drift check as one run of ``experiment``: tags, finite metrics, files under
    ``drift/``. Returns the run id."""
    mlflow.set_tracking_uri(store.ready(uri))
    exp = mlflow.set_experiment(experiment)
    if "mlflow.experimentKind" not in exp.tags:
        mlflow.set_experiment_tags(EXPERIMENT_TAGS)
    numbers = {k: float(v) for k, v in metrics.items() if finite(v)}
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        mlflow.log_metrics(numbers)
        for f in files:
            mlflow.log_artifact(str(f), artifact_path="drift")
    return run.info.run_id
