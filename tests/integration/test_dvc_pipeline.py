"""`dvc repro` builds everything from a fresh clone; a second one has nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.conftest import sh

pytestmark = pytest.mark.slow


def test_dvc_repro_builds_everything_then_nothing_to_do(project: Path) -> None:
    sh(project, "dvc", "repro")
    metrics = json.loads((project / "data/metrics/metrics.json").read_text())
    assert {"sampled_hr_10", "sampled_ndcg_10", "full_recall_10", "full_ndcg_10"} <= metrics.keys()
    reg = json.loads((project / "data/registry/registration.json").read_text())
    assert reg["alias"] == "champion" and reg["version"] == 1
    again = sh(project, "dvc", "repro")
    assert "Data and pipelines are up to date" in again.stdout
    shown = sh(project, "dvc", "metrics", "show", "--json").stdout
    assert "sampled_hr_10" in shown


def test_dvc_exp_run_set_param_changes_the_pool(project: Path) -> None:
    sh(project, "dvc", "repro")
    first = json.loads((project / "data/pools/train_pool.manifest.json").read_text())
    sh(project, "dvc", "exp", "run", "-S", "sampler.n_neg=3")
    second = json.loads((project / "data/pools/train_pool.manifest.json").read_text())
    assert first["n_neg"] == 2 and second["n_neg"] == 3
    assert second["content_md5"] != first["content_md5"]
