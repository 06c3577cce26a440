"""Scheduled retraining (issue #7): drift decides, the gate never promotes a worse model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from negsamp import config, io
from negsamp.data.stream import windows
from negsamp.paths import Paths
from negsamp.stages import ingest
from tests.integration.conftest import REPO, run_stages

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


def _append_window(root: Path, drift_level: float, index: int) -> None:
    cfg = config.load(root / "params.yaml")
    batch = windows(cfg.data.synthetic, cfg.base.seed, [0.0, drift_level])[1 if index else 0]
    f = root / f"window-{index}.parquet"
    io.write_parquet(f, batch)
    entry = ingest.append(cfg, f, Paths(root))
    appends = [a.model_dump() for a in cfg.data.appends] + [entry]
    config.write_overrides(root / "params.yaml", [f"data.appends={json.dumps(appends)}"])


def test_drift_flow_skips_without_drift_and_retrains_on_strong_drift(
    prefect_harness: None, trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = trained_project
    monkeypatch.syspath_prepend(str(REPO))
    from flows.drift import drift_check

    run_stages(root, "register")
    _append_window(root, 0.0, 0)  # window 0: no drift
    calm = drift_check(params=str(root / "params.yaml"), record_outputs=False)
    assert not calm["retrained"] and calm["drift"]["fired"] == [], calm["drift"]
    assert (root / "data/drift/drift_report.json").exists()

    _append_window(root, 1.0, 1)  # window 1: strong drift
    stormy = drift_check(params=str(root / "params.yaml"), record_outputs=False)
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
