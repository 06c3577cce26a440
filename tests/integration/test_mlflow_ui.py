"""The MLflow UI in a headless Chromium shows a sweep's parent run with its child runs (issue #6).

The screenshot is kept in ``artifacts_dir()`` (``test-artifacts/`` unless
``$NEGSAMP_TEST_ARTIFACTS`` says otherwise).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.integration.browser import (
    artifacts_dir,
    chromium_paths,
    mlflow_server,
    screenshot_runs,
)

pytestmark = pytest.mark.slow

CHILDREN = ["uniform-n4-bpr", "popularity-n4-bpr", "stratified-n4-bpr"]


def test_runs_page_shows_parent_and_child_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium_paths()  # skip before the slow part when no browser is installed
    import mlflow

    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", db)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    # explicit experiment ids: nested runs otherwise land in the active (default) experiment
    exp = mlflow.create_experiment("ui-test", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=exp, run_name="sweep-test"):
        for name in CHILDREN:
            with mlflow.start_run(experiment_id=exp, run_name=name, nested=True):
                mlflow.log_metric("ndcg_at_10", 0.1)

    png = artifacts_dir() / "mlflow-ui-sweep.png"
    with mlflow_server(db, tmp_path / "art") as url:
        text = screenshot_runs(url, exp, ["sweep-test", *CHILDREN], png)
    print(f"screenshot: {png}")

    assert "4 matching runs" in text
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    assert struct.unpack(">II", head[16:24]) == (1600, 1000)
