"""The tune loop with a stand-in trainer: pruning, parallel trials, nested MLflow runs (#15)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from negsamp import config, tune
from negsamp.mlops.tuning import MlflowTracker

EPOCHS = 6


def _fake_fit(cfg: config.Config, data: Any, on_epoch: Any) -> None:
    """Validation NDCG rises each epoch towards a peak at lr = 0.003 (no training)."""
    lr = cfg.model.active.lr
    top = math.exp(-((math.log10(lr) - math.log10(0.003)) ** 2))
    for e in range(EPOCHS):
        on_epoch(
            {"epoch": e, "loss": 1.0 / (e + 1), "valid_sampled_ndcg_10": top * (e + 1) / EPOCHS}
        )


class _Recorder:
    def __init__(self) -> None:
        self.started: list[int] = []
        self.finished: list[tuple[str, int]] = []

    def trial_started(self, number: int, params: dict[str, Any]) -> int:
        self.started.append(number)
        return number

    def epoch(self, handle: int, row: dict[str, float]) -> None:
        pass

    def trial_finished(
        self, handle: int, state: str, value: Any, epochs: int, seconds: float
    ) -> None:
        self.finished.append((state, epochs))


def test_pruned_trials_stop_early_and_the_best_is_a_completed_one() -> None:
    cfg = config.from_dict({"base": {"seed": 3}})
    rec = _Recorder()
    outcome, values = tune.run(cfg, None, 12, rec, fit=_fake_fit)
    states = {t.state for t in outcome.trials}
    assert len(outcome.trials) == 12 and "PRUNED" in states and "COMPLETE" in states
    for t in outcome.trials:
        assert (t.epochs == EPOCHS) == (t.state == "COMPLETE")
    best = outcome.best
    assert best.value == max(t.value for t in outcome.trials if t.state == "COMPLETE")
    assert values[("model", "bpr", "lr")] == best.params["model.bpr.lr"]
    again, _ = tune.run(cfg, None, 12, _Recorder(), fit=_fake_fit)  # seeded: same trials
    assert [t.params for t in again.trials] == [t.params for t in outcome.trials]


def test_parallel_trials_are_nested_runs_of_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = config.from_dict({})
    tracker = MlflowTracker(tmp_path, "tune-test", "tune-bpr-uniform", {})
    outcome, _ = tune.run(cfg, None, 4, tracker, jobs=2, fit=_fake_fit)
    tracker.finish(outcome.best.params, outcome.best.value)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tune-test")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == tracker.parent]
    assert sorted(int(r.data.params["trial"]) for r in children) == [0, 1, 2, 3]
    for r in children:
        assert r.info.status in ("FINISHED", "KILLED")
        curve = client.get_metric_history(r.info.run_id, "valid_sampled_ndcg_10")
        assert len(curve) == int(r.data.metrics["epochs"]) and curve
    assert client.get_run(tracker.parent).data.metrics["best_valid"] == outcome.best.value
