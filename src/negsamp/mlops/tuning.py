"""MLflow side of ``negsamp tune``: a parent run per study, a nested run per trial.

A trial's run is created when the trial starts (RUNNING, with its sampled parameters), gets
its learning curve epoch by epoch (``train_loss``, ``valid_*``) and ends FINISHED (a
completed trial), KILLED (pruned) or FAILED, with the trial's best validation value as
``best_<monitor>``. The parent holds the study's settings, the best trial's values and the
``sweep.configs`` entry written. Runs are made with :class:`MlflowClient` (not the fluent
API), so parallel trials in threads each write to their own run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from negsamp.mlops.tracking import experiment_id
from negsamp.mlops.uri import tracking_uri

_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
_CURVE = {"loss": "train_loss", "seconds": "train_epoch_seconds"}


class MlflowTracker:
    """Implements :class:`negsamp.tune.Tracker` on an MLflow tracking store."""

    def __init__(self, root: Path, experiment: str, run_name: str, tags: dict[str, str]) -> None:
        uri = tracking_uri(root)
        self.client = MlflowClient(uri)
        self.experiment_id = experiment_id(self.client, experiment, uri, root)
        self.parent = self.client.create_run(
            self.experiment_id, run_name=run_name, tags={"negsamp.kind": "tune", **tags}
        ).info.run_id
        self._lock = threading.Lock()  # sqlite stores take one writer at a time

    def log_study(self, params: dict[str, Any]) -> None:
        with self._lock:
            self.client.log_batch(self.parent, params=[Param(k, str(v)) for k, v in params.items()])

    def trial_started(self, number: int, params: dict[str, Any]) -> str:
        tags = {"mlflow.parentRunId": self.parent, "negsamp.kind": "tune-trial"}
        with self._lock:
            run = self.client.create_run(
                self.experiment_id, run_name=f"trial-{number:03d}", tags=tags
            )
            plist = [Param(k, str(v)) for k, v in params.items()]
            self.client.log_batch(run.info.run_id, params=[*plist, Param("trial", str(number))])
        return run.info.run_id

    def epoch(self, handle: str, row: dict[str, float]) -> None:
        now, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [
            Metric(_CURVE.get(k, k), float(v), now, step)
            for k, v in row.items()
            if (k in _CURVE or k.startswith("valid_")) and v == v
        ]
        with self._lock:
            self.client.log_batch(handle, metrics=metrics)

    def trial_finished(
        self, handle: str, state: str, value: float | None, epochs: int, seconds: float
    ) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric("epochs", float(epochs), now, 0), Metric("seconds", seconds, now, 0)]
        if value is not None:
            metrics.append(Metric("best_valid", value, now, 0))
        with self._lock:
            self.client.log_batch(handle, metrics=metrics)
            self.client.set_tag(handle, "negsamp.trial_state", state)
            self.client.set_terminated(handle, _STATUS[state])

    def finish(
        self, best: dict[str, Any] | None, value: float | None, status: str = "FINISHED"
    ) -> None:
        """End the parent run with the best trial's values (None when the study failed)."""
        now = int(time.time() * 1000)
        with self._lock:
            if best is not None:
                self.client.log_batch(
                    self.parent,
                    params=[Param(f"best.{k}", str(v)) for k, v in best.items()],
                    metrics=[] if value is None else [Metric("best_valid", value, now, 0)],
                )
            self.client.set_terminated(self.parent, status)
