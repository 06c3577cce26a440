"""The Prefect flow runs the same stages, records with DVC, and leaves `dvc repro` nothing to do."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import BIN, make_project, sh

pytestmark = pytest.mark.slow


def _run_flow(project: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(project)
    from flows.pipeline import pipeline
    from negsamp import config

    return pipeline(config.load(project / "params.yaml"), root=str(project))


def test_flow_runs_every_stage_and_dvc_has_nothing_left(
    prefect_harness: None, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_flow(project, monkeypatch)
    assert result["registration"]["alias"] == "champion"
    rec = result["recommendations"]  # the recommend stage ran after register (#13)
    assert rec["config"] == "default" and rec["rows"] == rec["k"] * rec["users"] > 0
    assert (
        result["metrics"]["default"]["sampled_hr_10"] > 0.1
    )  # better than a constant scorer (0.0)
    status = sh(project, "dvc", "status")
    assert "up to date" in status.stdout, status.stdout
    again = sh(project, "dvc", "repro")
    assert "Data and pipelines are up to date" in again.stdout
    _assert_artifacts(result)
    _assert_second_run_reprints(project, result)


def _assert_second_run_reprints(project: Path, result: dict) -> None:
    """Issue #17: a second `negsamp run` with nothing changed runs no stage (no new MLflow
    run, no new version, the registration as it was) and prints the recorded results."""
    import mlflow

    reg = result["registration"]
    client = mlflow.MlflowClient(reg["tracking_uri"])
    exp = client.get_experiment_by_name(reg["experiment"]).experiment_id
    runs = len(client.search_runs([exp]))
    registration = (project / "data/registry/registration.json").read_text()
    out = sh(project, str(BIN / "negsamp"), "run").stdout
    assert "nothing changed since the last recorded run" in out, out
    assert "sampled_hr_10" in out and f"{result['metrics']['default']['sampled_hr_10']:.4f}" in out
    assert len(client.search_runs([exp])) == runs
    assert (project / "data/registry/registration.json").read_text() == registration
    assert "up to date" in sh(project, "dvc", "status").stdout


def _assert_artifacts(result: dict) -> None:
    """The flow run's Artifacts tab: the report (decision, MLflow links, comparison) and the
    comparison table (issue #15), found through the MLflow run's Prefect lineage tag."""
    import mlflow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    reg = result["registration"]
    run = mlflow.MlflowClient(reg["tracking_uri"]).get_run(reg["run_id"])
    flow_run_id = run.data.tags["prefect_flow_run_id"]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == {"negsamp-run", "negsamp-comparison"}, by_key
    report = by_key["negsamp-run"].data
    assert (
        f"**{reg['model_name']} v{reg['version']}** (default): promoted to **champion**" in report
    )
    assert f"/#/experiments/{run.info.experiment_id}/runs/{reg['run_id']}" in report
    assert f"/#/models/{reg['model_name']}/versions/{reg['version']}" in report
    assert "| 1 | default (chosen) | uniform | bpr |" in report
    table = json.loads(by_key["negsamp-comparison"].data)
    assert [r["configuration"] for r in table] == ["default"]
    hr = result["metrics"]["default"]["sampled_hr_10"]
    assert table[0]["sampled_hr_10"] == pytest.approx(hr)


def test_bad_input_stops_before_anything_downstream_and_leaves_registry_alone(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating,timestamp\n1,10,5,100\n1,,4,200\n2,11,3,300\n")
    project = make_project(tmp_path / "proj", {"data": {"source": "csv", "path": str(bad)}})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    with pytest.raises(Exception, match="item"):
        _run_flow(project, monkeypatch)
    assert not (project / "data/interim/interactions.parquet").exists()
    assert not (project / "data/split").exists()
    assert not (project / "data/registry").exists()
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert client.search_registered_models() == []


def test_negsamp_run_writes_set_overrides_to_params_and_prints_metrics(project: Path) -> None:
    res = sh(
        project, str(Path(sys.executable).with_name("negsamp")), "run", "--set", "sampler.n_neg=3"
    )
    assert "params.yaml updated: sampler.n_neg=3" in res.stdout
    assert "n_neg: 3" in (project / "params.yaml").read_text()
    for name in ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10"):
        assert name in res.stdout
    assert "registered negsamp version 1 as champion" in res.stdout
    manifest = json.loads((project / "data/pools/default/train_pool.manifest.json").read_text())
    assert manifest["n_neg"] == 3
    assert manifest["algorithm_version"] == 2  # #17: a changed pool is explained by it
    assert "Data and pipelines are up to date" in sh(project, "dvc", "repro").stdout


def test_a_bad_override_is_refused_and_params_yaml_is_untouched(project: Path) -> None:
    before = (project / "params.yaml").read_text()
    res = sh(
        project,
        str(Path(sys.executable).with_name("negsamp")),
        "run",
        "--set",
        "sampler.n_negs=3",
        check=False,
    )
    assert res.returncode == 1
    assert "sampler.n_negs: unknown key" in res.stderr
    assert (project / "params.yaml").read_text() == before
