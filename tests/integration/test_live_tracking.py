"""Live MLflow tracking (issue #15): `negsamp run` against a real `mlflow server` on
127.0.0.1. While the model trains its run is RUNNING with a growing learning curve; afterwards
the same run holds the headline metrics, the datasets, the table of every metric, system
metrics, and is the registered version's run. The MLflow UI's run page, opened in headless
Chromium, shows the learning curve among its first charts (screenshot kept in
test-artifacts/)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from negsamp.mlops import live
from negsamp.mlops.tracking import ALL_METRICS_TABLE, read_metrics_table
from tests.integration.browser import artifacts_dir, mlflow_server
from tests.integration.conftest import BIN, make_project

pytestmark = pytest.mark.slow

EPOCHS = 25


def _watch(client, proc: subprocess.Popen, timeout: float = 600) -> list[tuple[str, str, int]]:
    """Poll the server until ``proc`` ends: (run id, status, epochs logged) of each training
    run seen RUNNING, every time it was seen."""
    seen: list[tuple[str, str, int]] = []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        exp = client.get_experiment_by_name("negsamp")
        if exp is not None:
            for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
                if run.data.tags.get(live.KIND_TAG) == "training":
                    steps = len(client.get_metric_history(run.info.run_id, "curve/train_loss"))
                    seen.append((run.info.run_id, run.info.status, steps))
        time.sleep(0.2)
    return seen


def test_a_run_is_visible_while_it_trains_and_register_continues_it(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    root = make_project(
        tmp_path / "proj", {"train": {"epochs": EPOCHS, "patience": EPOCHS, "batch_size": 256}}
    )
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts") as url:
        client = MlflowClient(url)
        env = {"MLFLOW_TRACKING_URI": url, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}:/usr/bin:/bin"}
        env |= {"PYTHONPATH": f"{root / 'src'}:{root}", "MLFLOW_DISABLE_TELEMETRY": "true"}
        with (tmp_path / "run.log").open("w") as out:
            proc = subprocess.Popen(
                [str(BIN / "negsamp"), "run"], cwd=root, env=env, stdout=out, stderr=out
            )
            seen = _watch(client, proc)
            rc = proc.wait(timeout=600)
        assert rc == 0, (tmp_path / "run.log").read_text()[-3000:]

        # while it trained: RUNNING, with the curve growing epoch by epoch
        assert seen, "no training run was ever seen RUNNING"
        run_ids = {r for r, _, _ in seen}
        assert len(run_ids) == 1
        steps = [s for _, _, s in seen]
        assert max(steps) >= 2 and len(set(steps)) >= 2, steps  # seen at two epochs at least

        # afterwards: the same run, FINISHED, continued by evaluate and register
        (run_id,) = run_ids
        run = client.get_run(run_id)
        reg = json.loads((root / "data/registry/registration.json").read_text())
        assert reg["run_id"] == run_id and run.info.status == "FINISHED"
        mv = client.get_model_version(reg["model_name"], str(reg["version"]))
        assert mv.run_id == run_id and mv.description.startswith("gate: champion")
        history = json.loads((root / "data/models/default/history.json").read_text())
        curve = client.get_metric_history(run_id, "curve/train_loss")
        assert [m.step for m in curve] == [h["epoch"] for h in history]  # each epoch once
        assert min(steps) < len(history)  # seen before its training ended
        headline = json.loads((root / "data/metrics/default/headline.json").read_text())
        assert {k: run.data.metrics[k] for k in headline} == pytest.approx(headline)
        assert len(run.data.metrics) < 50, sorted(run.data.metrics)  # not hundreds of series
        assert any(k.startswith("system/cpu") for k in run.data.metrics), sorted(run.data.metrics)
        metrics = json.loads((root / "data/metrics/default/metrics.json").read_text())
        table = read_metrics_table(client, run_id)
        assert {k: table[k]["value"] for k in metrics} == pytest.approx(metrics)
        arts = {a.path for a in client.list_artifacts(run_id, "metrics")}
        assert ALL_METRICS_TABLE in arts
        names = {d.dataset.name for d in run.inputs.dataset_inputs}
        assert {"train", "train_pool", "test", "eval_candidates"} <= names
        digests = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
        assert digests["train_pool"] == run.data.tags["train_pool_md5"]
        exp = client.get_experiment(run.info.experiment_id)
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
        assert len(client.search_runs([exp.experiment_id])) == 1  # one run, not two

        _screenshot_run_page(url, exp.experiment_id, run_id)


def _screenshot_run_page(url: str, experiment_id: str, run_id: str) -> None:
    """The run page's metric charts in headless Chromium: the learning curve among the
    first charts (skips without a browser, see tests/integration/browser.py)."""
    from tests.integration.browser import screenshot_page

    png = artifacts_dir() / "mlflow_run_live.png"
    text = screenshot_page(
        f"{url}/#/experiments/{experiment_id}/runs/{run_id}/model-metrics",
        png,
        lambda body: "train_loss" in body and "Model metrics" in body,
    )
    print(f"screenshot: {png}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # the learning curve is the page's first section of charts, before the headline metrics
    first = lines.index("curve")
    assert lines.index("train_loss") > first and "valid_sampled_ndcg_10" in lines
    assert all(lines.index(m) > first for m in ("full_ndcg_10", "sampled_ndcg_10") if m in lines)
