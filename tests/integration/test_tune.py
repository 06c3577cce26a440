"""`negsamp tune` on a tiny synthetic project (issue #15 point 6): a real MLflow sqlite store,
nested trial runs, the best trial written to sweep.configs, selected on validation only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from negsamp import config
from negsamp.config import overrides as ov
from negsamp.paths import Paths
from negsamp.stages import run_stage

from .conftest import REPO, SMALL, run_stages, sh

pytestmark = pytest.mark.slow

CURVE = {"train_loss", "train_epoch_seconds", "best_valid", "epochs", "seconds"}


def test_tune_three_trials_writes_the_best_to_sweep_configs(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = project / "params.yaml"
    shutil.copy(
        REPO / "params.yaml", params
    )  # the commented file, shrunk through the override path
    config.update(params, [*ov.from_patch(SMALL), (("train", "epochs"), 3)])
    before = params.read_text()
    monkeypatch.chdir(project)
    run_stages(project, "split")
    paths = Paths(project)
    # the test pairs only keep each user's test item out of its validation competitors (as
    # the train stage does, issue #18); no trial is scored on test (no test metric below)

    out = sh(project, "negsamp", "tune", "--trials", "3").stdout
    assert "sweep.configs.tuned-bpr" in out

    # params.yaml: only the new entry was added; comments, nulls and order kept
    after = params.read_text()
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added[0] == "    tuned-bpr:" and all(line.startswith("      ") for line in added[1:])
    assert [line for line in after.splitlines() if line not in added] == before.splitlines()
    assert after.count("null") == before.count("null") > 0

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name(config.load(params).registry.experiment)
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("negsamp.kind") == "tune"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 3 and parent.info.status == "FINISHED"
    for t in trials:
        assert t.info.status == "FINISHED"  # no pruning before 3 finished trials
        extra = {m for m in t.data.metrics if not m.startswith("valid_")} - CURVE
        assert not extra, f"a trial logged more than its training and validation: {extra}"
        curve = client.get_metric_history(t.info.run_id, "valid_sampled_ndcg_10")
        assert [m.step for m in curve] == [0, 1, 2]
        assert t.data.metrics["best_valid"] == max(m.value for m in curve)
    best = max(trials, key=lambda r: r.data.metrics["best_valid"])
    assert parent.data.metrics["best_valid"] == best.data.metrics["best_valid"]

    # the entry config.load reads is the best trial, and training it reproduces its value
    cfg = config.load(params)
    tuned = cfg.variant("tuned-bpr")
    for key in ("lr", "l2", "factors"):
        assert str(getattr(tuned.model.active, key)) == best.data.params[f"model.bpr.{key}"]
    assert str(tuned.sampler.n_neg) == best.data.params["sampler.n_neg"]
    run_stage("sample-negatives", cfg, paths, "tuned-bpr")
    run_stage("train", cfg, paths, "tuned-bpr")
    history = json.loads(paths.for_variant("tuned-bpr").train_history.read_text())
    reproduced = max(row["valid_sampled_ndcg_10"] for row in history)
    assert reproduced == pytest.approx(best.data.metrics["best_valid"], abs=1e-9)


def test_tune_refuses_a_train_lr_that_would_shadow_the_search(project: Path) -> None:
    proc = sh(project, "negsamp", "tune", "--trials", "1", "--set", "train.lr=0.01", check=False)
    assert proc.returncode == 1
    assert "train.lr is set" in proc.stderr and "Traceback" not in proc.stderr
