"""Live tracking (issue #15): a configuration's MLflow run opens when its model starts training.

The train stage's run is created before the first epoch with the training parameters, and
gets each epoch's loss and validation metrics as the epoch ends, with MLflow's system
metrics (CPU, memory, GPU where there is one) beside them, so a model in training shows in
the UI as RUNNING with its learning curve growing. When training ends, the run is tagged with
the md5 of the weights it wrote and ended FINISHED (a failure ends it FAILED). The evaluate
stage adds its headline metrics to that run; the register stage (:mod:`negsamp.mlops.gate`)
continues it: it logs the rest of the configuration, the datasets, the files and the gate's
outcome into the same run instead of opening a new one.

A run is continued only when it is the same training: the same configuration name, the same
training parameters (:func:`train_params`, their md5 in :data:`PARAMS_TAG`) and the same
weights (:data:`WEIGHTS_TAG`), and no registration has logged into it yet
(:data:`LOGGED_TAG`). Otherwise (another training of the same configuration, a model
trained with tracking unreachable) the register stage opens a run of its own, as before.

Tracking here is best effort: a tracking server that does not answer makes training go on
without a live run (one warning), never fails it; the registration, which is not best
effort, logs everything afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from negsamp import engine
from negsamp.config import Config, dump, flatten
from negsamp.io import md5_file, read_json
from negsamp.paths import Paths

log = logging.getLogger(__name__)

WEIGHTS_TAG = "weights_md5"  # the same tag (and value) the lineage gives a registered run
PARAMS_TAG = "negsamp.train_params_md5"
TRAINED_IN_TAG = "negsamp.trained_in"  # "this process" or "ray worker on node <id>"
LOGGED_TAG = "negsamp.registered"  # set by the register stage on each run it logged into
KIND_TAG = "negsamp.kind"
# the params.yaml keys that decide a trained model (the train stage's declaration, less the
# sweep entry, which reaches the model through these sections)
_TRAIN_KEYS = ("base.seed", "base.device", "model", "sampler", "train")
_TRAIN_KEYS += ("evaluate.n_eval_neg", "evaluate.batch_size")
_SYSTEM_SAMPLING_S = 5.0


def train_params(cfg: Config) -> dict[str, str]:
    """The flattened parameters of configuration ``cfg`` that decide its trained model."""
    flat = flatten(dump(cfg, active_only=True))
    return {
        k: str(v)
        for k, v in flat.items()
        if any(k == p or k.startswith(p + ".") for p in _TRAIN_KEYS)
    }


def params_md5(cfg: Config) -> str:
    return hashlib.md5(json.dumps(train_params(cfg), sort_keys=True).encode()).hexdigest()


def run_name(cfg: Config, variant: str, sweep: bool) -> str:
    """A configuration's run name: its sweep.configs name in a sweep, else what it is."""
    if sweep:
        return variant
    s = cfg.sampler.active
    return f"{s.name}-n{getattr(s, 'n_neg', 'b')}-{cfg.model.name}"


def _reachable(uri: str) -> bool:
    """A tracking server answers its health check within 3 s (a local store: always)."""
    if not uri.startswith(("http://", "https://")):
        return True
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=3)
    except OSError:
        return False
    return True


@dataclass
class TrainingRun:
    """One configuration's run while its model trains (see the module docstring)."""

    client: Any
    run_id: str
    uri: str
    paths: Paths
    monitor: Any = None
    epochs: set[int] = field(default_factory=set)
    broken: bool = False

    def epoch(self, row: dict[str, float]) -> None:
        """Log one epoch of the trainer's history (``on_epoch`` of :func:`negsamp.train.fit`)."""
        if self.broken:
            return
        from negsamp.mlops import tracking

        try:
            batch = tracking.curve([row], int(time.time() * 1000))
            if batch:
                self.client.log_batch(self.run_id, metrics=batch)
            self.epochs.add(int(row["epoch"]))
        except Exception as err:  # noqa: BLE001 - tracking never fails training
            self.broken = True
            log.warning("live tracking stopped (training goes on): %s", err)

    def finish(self, ok: bool) -> None:
        """Tag the run with what training wrote and end it FINISHED (``ok``) or FAILED."""
        from negsamp.mlops import tracking
        from negsamp.models import WEIGHTS_FILE

        if self.monitor is not None:
            self.monitor.finish()
            _last_sample(self.monitor)
        try:
            if ok:
                history = read_json(self.paths.train_history)
                missing = [h for h in history if int(h["epoch"]) not in self.epochs]
                batch = tracking.curve(missing, int(time.time() * 1000))  # a resume's epochs
                tags = {tracking.CURVE_TAG: "complete"}
                weights = self.paths.model_dir / WEIGHTS_FILE
                if weights.is_file():
                    tags[WEIGHTS_TAG] = md5_file(weights)
                for lo in range(0, len(batch), 1000):
                    self.client.log_batch(self.run_id, metrics=batch[lo : lo + 1000])
                for k, v in tags.items():
                    self.client.set_tag(self.run_id, k, v)
            self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")
        except Exception as err:  # noqa: BLE001 - tracking never fails training
            log.warning("could not close the live MLflow run %s: %s", self.run_id, err)


def start_training(cfg: Config, paths: Paths, variant: str) -> TrainingRun | None:
    """Open configuration ``variant``'s run before it trains; None (one warning) when the
    tracking store cannot be reached. ``cfg`` is the whole configuration, ``paths`` the
    project's (both resolved to ``variant`` here)."""
    from negsamp.mlops.uri import tracking_uri

    uri = tracking_uri(paths.root)
    if not _reachable(uri):
        log.warning("MLflow at %s does not answer: training is not tracked live", uri)
        return None
    vcfg, vpaths = cfg.variant(variant), paths.for_variant(variant)
    try:
        return _open(vcfg, vpaths, variant, uri, sweep=len(cfg.variants) > 1)
    except Exception as err:  # noqa: BLE001 - tracking never fails training
        log.warning("training is not tracked live (MLflow at %s: %s)", uri, err)
        return None


def _open(cfg: Config, paths: Paths, variant: str, uri: str, sweep: bool) -> TrainingRun:
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from negsamp.mlops import recovery, store, tracking

    client = MlflowClient(store.ready(uri))
    exp_id = tracking.experiment_id(client, cfg.registry.experiment, uri, paths.root)
    s = cfg.sampler.active
    tags = {KIND_TAG: "training", "config": variant, "sampler": s.name, "model": cfg.model.name}
    tags |= {"n_neg": str(getattr(s, "n_neg", "batch")), PARAMS_TAG: params_md5(cfg)}
    tags[TRAINED_IN_TAG] = engine.trained_in()  # this process, or a Ray worker of the cluster
    run = client.create_run(
        exp_id, run_name=run_name(cfg, variant, sweep), tags=tags | recovery.process_tags()
    )
    run_id = run.info.run_id
    items = [Param(k, v[: tracking.MAX_PARAM_CHARS]) for k, v in train_params(cfg).items()]
    for lo in range(0, len(items), 100):  # log_batch takes at most 100 params
        client.log_batch(run_id, params=items[lo : lo + 100])
    monitor = _system_metrics(run_id, uri)
    log.info("MLflow run %s (%s) follows the training live", run_id, run.info.run_name)
    return TrainingRun(client, run_id, uri, paths, monitor)


def _system_metrics(run_id: str, uri: str) -> Any:
    """MLflow's system-metrics monitor on ``run_id`` (None without psutil)."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(
            run_id, sampling_interval=_SYSTEM_SAMPLING_S, tracking_uri=uri
        )
    except Exception as err:  # noqa: BLE001 - psutil missing: no system metrics
        log.debug("no system metrics: %s", err)
        return None
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    monitor.start()
    return monitor


def _last_sample(monitor: Any) -> None:
    """One more sample of the system metrics, logged now: MLflow's monitor logs one only at
    the end of each sampling interval, so a training shorter than the interval had none."""
    try:
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
    except Exception as err:  # noqa: BLE001 - tracking never fails training
        log.debug("no final system-metrics sample: %s", err)


def find(client: Any, experiment_id: str, cfg: Config, paths: Paths, variant: str) -> str | None:
    """The id of the live run that trained configuration ``variant``'s current model and that
    no registration has logged into yet; None when there is none (see the module docstring)."""
    from negsamp.models import WEIGHTS_FILE

    weights = paths.model_dir / WEIGHTS_FILE
    if not weights.is_file():
        return None
    md5, pmd5 = md5_file(weights), params_md5(cfg)
    found = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{KIND_TAG}` = 'training' and tags.config = '{variant}' "
            f"and tags.`{WEIGHTS_TAG}` = '{md5}' and tags.`{PARAMS_TAG}` = '{pmd5}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    fresh = [r for r in found if LOGGED_TAG not in r.data.tags and r.info.status == "FINISHED"]
    return fresh[0].info.run_id if fresh else None


def after_evaluate(cfg: Config, paths: Paths, variant: str) -> None:
    """Add the evaluate stage's headline metrics to configuration ``variant``'s live run
    (best effort: nothing when there is none or tracking does not answer)."""
    from negsamp.metrics.artifacts import EvalFiles
    from negsamp.mlops.uri import tracking_uri

    uri = tracking_uri(paths.root)
    vcfg, vpaths = cfg.variant(variant), paths.for_variant(variant)
    headline = EvalFiles(vpaths).headline
    if not headline.is_file() or not _reachable(uri):
        return
    try:
        _log_headline(vcfg, vpaths, variant, uri, read_json(headline))
    except Exception as err:  # noqa: BLE001 - tracking never fails evaluation
        log.warning("evaluation not added to the live MLflow run: %s", err)


def _log_headline(
    cfg: Config, paths: Paths, variant: str, uri: str, values: dict[str, float]
) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from negsamp.mlops import store, tracking

    client = MlflowClient(store.ready(uri))
    exp = client.get_experiment_by_name(cfg.registry.experiment)
    run_id = None if exp is None else find(client, exp.experiment_id, cfg, paths, variant)
    if run_id is None:
        return
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in values.items() if tracking.finite(v)]
    if batch:
        client.log_batch(run_id, metrics=batch)
