"""Quality on real data: BPR trained by this pipeline on MovieLens-100k (issue #2's bar)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import make_project, sh

pytestmark = [pytest.mark.slow, pytest.mark.data]


def test_bpr_on_movielens_100k_beats_popularity_and_implicit(
    ml100k: Path, tmp_path: Path, monkeypatch
) -> None:
    # the repo's own training defaults; only the data source changes (SMALL's model/train are undone)
    project = make_project(
        tmp_path / "proj",
        {
            "data": {"source": "movielens-100k", "path": str(ml100k)},
            "sampler": {"n_neg": 4, "pool_epochs": 5},
            "model": {"bpr": {"factors": 64}},
            "train": {"epochs": 20, "batch_size": 4096},
            "evaluate": {"n_eval_neg": 99},
        },
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    sh(project, "dvc", "repro", "evaluate")
    m = json.loads((project / "data/metrics/default/metrics.json").read_text())
    assert m["n_test_users"] == 943
    # popularity scores 0.31 and implicit's BPR 0.53 on this protocol (issue #2)
    assert m["sampled_hr_10"] >= 0.55, m


def test_random_split_and_rating_as_weight_on_movielens_100k_issue_14(
    ml100k: Path, tmp_path: Path, monkeypatch
) -> None:
    """#14: the random split and the rating as interaction weight run through the pipeline."""
    project = make_project(
        tmp_path / "proj",
        {
            "data": {
                "source": "movielens-100k",
                "path": str(ml100k),
                "columns": {"weight": "rating"},
            },
            "split": {"method": "random"},
            "model": {
                "name": "ials",
                "ials": {"factors": 64, "iterations": 15, "confidence": "log"},
            },
            "evaluate": {"n_eval_neg": 99},
        },
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    sh(project, "dvc", "repro", "evaluate")
    split = json.loads((project / "data/split/split.json").read_text())
    assert (split["method"], split["test_users"]) == ("random", 943)
    ingest = json.loads((project / "data/interim/ingest.json").read_text())
    assert ingest["weight"]["column"] == "rating" and ingest["timestamp_parsed_as"] == "unix_s"
    m = json.loads((project / "data/metrics/default/metrics.json").read_text())
    assert m["n_test_users"] == 943
    assert m["sampled_hr_10"] > 0.5, m  # popularity alone scores about 0.3 on this protocol
