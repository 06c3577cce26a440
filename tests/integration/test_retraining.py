"""Scheduled retraining (issue #7): drift decides, the gate never promotes a worse model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from negsamp import config, io
from negsamp.data.stream import windows
from negsamp.paths import Paths
from negsamp.stages import ingest
from tests.integration.conftest import run_stages, sh
from tests.integration.lineage import reproduce

pytestmark = pytest.mark.slow


def _aliases(root: Path) -> dict[str, int]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    return {a: int(v) for a, v in client.get_registered_model("negsamp").aliases.items()}


def test_a_deliberately_worse_challenger_does_not_take_the_champion_alias(
    trained_project: Path,
) -> None:
    root = trained_project
    run_stages(root, "register")
    assert _aliases(root) == {"champion": 1}
    # the same data, a model that barely trained: evaluated on the same split, it loses
    config.write_overrides(root / "params.yaml", ["train.epochs=1", "train.lr=0.000001"])
    for stage in ("train", "evaluate", "register"):
        from negsamp.stages import module

        cfg = config.load(root / "params.yaml")
        if stage == "register":
            module(stage).run(cfg, Paths(root))
        else:
            module(stage).run(cfg, Paths(root), "default")
    reg = json.loads((root / "data/registry/registration.json").read_text())
    assert reg["alias"] == "challenger" and not reg["promoted"]
    assert (
        reg["gate"]["champion"] > reg["gate"]["challenger"] and reg["gate"]["p_value"] is not None
    )
    assert "current test split" in reg["reason"]
    assert _aliases(root) == {"champion": 1, "challenger": 2}


def _append_window(root: Path, drift_level: float, index: int) -> dict[str, Any]:
    """Append a simulated window as `negsamp ingest --append` does (params, DVC, git commit)."""
    cfg = config.load(root / "params.yaml")
    batch = windows(cfg.data.synthetic, cfg.base.seed, [0.0, drift_level])[1 if index else 0]
    f = root / f"window-{index}.parquet"
    io.write_parquet(f, batch)
    return ingest.append_snapshot(root / "params.yaml", f, Paths(root))


def test_drift_flow_skips_without_drift_and_retrains_on_strong_drift(
    prefect_harness: None, trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = trained_project
    from flows.drift import drift_check

    run_stages(root, "register")
    _append_window(root, 0.0, 0)  # window 0: no drift
    calm = drift_check(config.load(root / "params.yaml"), root=str(root), record_outputs=False)
    assert not calm["retrained"] and calm["drift"]["fired"] == [], calm["drift"]
    assert (root / "data/drift/drift_report.json").exists()

    _append_window(root, 1.0, 1)  # window 1: strong drift
    stormy = drift_check(config.load(root / "params.yaml"), root=str(root), record_outputs=False)
    assert stormy["retrained"], stormy["drift"]
    assert "item_popularity_psi" in stormy["drift"]["fired"]
    reg = stormy["registration"]
    assert reg["version"] == 2
    # promoted only when better on the same current split
    assert reg["promoted"] == (reg["gate"]["challenger"] > reg["gate"]["champion"])
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    tags = client.get_run(reg["run_id"]).data.tags
    assert tags["data_snapshot"] == "2"  # lineage points at the new snapshot
    assert tags["data_md5"] == io.md5_file(root / "data/interim/interactions.parquet")


def _champion(root: Path) -> tuple[dict[str, str], dict[str, float]]:
    """The champion version's tags and its MLflow run's metrics."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    version = client.get_model_version_by_alias("negsamp", "champion")
    run = client.get_run(version.run_id).data
    lineage = {k: v for k, v in version.tags.items() if k == "git_commit" or k.endswith("_md5")}
    assert {k: run.tags.get(k) for k in lineage} == lineage  # the run says the same
    return version.tags, run.metrics


def test_a_retrained_champion_is_rebuilt_by_dvc_repro_from_its_lineage_tags(
    prefect_harness: None,
    trained_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue #7: the new champion's tags point at the new snapshot and pools, and `dvc repro`
    at its tagged commit rebuilds its metrics exactly."""
    root = trained_project
    from flows.drift import drift_check

    run_stages(root, "register")
    first, _ = _champion(root)
    appended = _append_window(root, 1.0, 1)
    # the new data version is a commit of exactly what the append wrote
    assert appended["commit"] == sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    assert sorted(sh(root, "git", "show", "--name-only", "--format=", "HEAD").stdout.split()) == [
        "data/raw/appends/.gitignore",
        "data/raw/appends/0001.parquet.dvc",
        "params.yaml",
    ]

    result = drift_check(config.load(root / "params.yaml"), root=str(root), record_outputs=False)
    assert result["retrained"] and result["registration"]["promoted"], result
    tags, metrics = _champion(root)
    name = tags["config"]
    pool = Path("data/pools", name, "train_pool.parquet")
    assert tags["data_snapshot"] == "1"
    assert (tags["git_commit"], tags["git_dirty"]) == (appended["commit"], "false")
    assert tags["data_md5"] != first["data_md5"]
    assert tags["train_pool_md5"] == io.md5_file(root / pool) != first["train_pool_md5"]

    clone = reproduce(root, tags["git_commit"], f"evaluate@{name}", tmp_path / "clone")
    rebuilt = json.loads((clone / "data/metrics" / name / "metrics.json").read_text())
    for key in ("sampled_ndcg_10", "sampled_hr_10", "full_recall_10", "full_ndcg_10"):
        assert rebuilt[key] == metrics[key], key
    assert io.md5_file(clone / pool) == tags["train_pool_md5"]
    assert io.md5_file(clone / "data/interim/interactions.parquet") == tags["data_md5"]
