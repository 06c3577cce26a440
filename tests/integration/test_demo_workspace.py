"""`negsamp demo-drift` runs in its own workspace (issue #13, point 4): the project's git
status, history, params.yaml and MLflow store are exactly as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from negsamp import config
from tests.integration.conftest import sh

pytestmark = pytest.mark.slow


def test_demo_drift_leaves_git_status_and_params_yaml_as_they_were_issue_13(
    prefect_harness: None, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from flows.demo import demo_drift

    params = project / "params.yaml"
    # an uncommitted edit of the user's, which the old demo swept into its first commit
    params.write_text(params.read_text() + "# my uncommitted note\n")
    before = params.read_bytes()
    status = sh(project, "git", "status", "--porcelain", "--untracked-files=all").stdout
    head = sh(project, "git", "rev-parse", "HEAD").stdout
    assert status.strip() == "M params.yaml"
    monkeypatch.chdir(project)

    out = demo_drift(config.load(params), root=str(project))

    assert sh(project, "git", "status", "--porcelain", "--untracked-files=all").stdout == status
    assert sh(project, "git", "rev-parse", "HEAD").stdout == head
    assert params.read_bytes() == before
    assert not (project / "mlflow.db").exists() and not (project / "data").exists()

    ws = Path(out["workspace"])
    assert ws == project / ".negsamp" / "demo"
    assert [o["window"] for o in out["outcomes"]] == [1, 2, 3]
    demo = yaml.safe_load((ws / "params.yaml").read_text())
    assert demo["registry"]["model_name"] == "negsamp-demo"
    assert [a["base"] for a in demo["data"]["appends"]] == [
        {"source": "synthetic", "path": "data/raw/synthetic.parquet"}
    ] * 3
    log = sh(ws, "git", "log", "--format=%s").stdout.splitlines()
    assert len(log) == 4 and all(s.startswith("data: append batch") for s in log[:3])
    assert out["tracking_uri"] == f"sqlite:///{ws / 'mlflow.db'}"
    versions = MlflowClient(out["tracking_uri"]).search_model_versions("name='negsamp-demo'")
    assert versions and all(
        v.tags["dataset"] == "synthetic:data/raw/synthetic.parquet" for v in versions
    )
