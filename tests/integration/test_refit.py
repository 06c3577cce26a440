"""Issue #13, point 2, end to end: the whole pipeline registers a refit champion.

On the synthetic default and on MovieLens-100k: the champion's served top-K (the MLflow
pyfunc and the recommend stage's batch alike) never holds an item of the user's full
history, though the refit trained on all of it; and the version's held-out evidence is the
evaluated configuration's metrics.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from tests.integration.conftest import make_project, run_stages

pytestmark = pytest.mark.slow

K = 20


def _original(path: Path, dense: str) -> pl.DataFrame:
    """dense id -> original id (as the recommend stage reads the id maps)."""
    df = pl.read_parquet(path)
    raw = df.drop(dense).to_series(0)
    return pl.DataFrame({dense: df[dense], "raw": raw})


def _history(root: Path) -> pl.DataFrame:
    """Every (user, item) of the whole log, in original ids."""
    log_ = pl.read_parquet(root / "data/interim/interactions.parquet", columns=["user", "item"])
    users = _original(root / "data/interim/user_ids.parquet", "user")
    items = _original(root / "data/interim/item_ids.parquet", "item")
    log_ = log_.join(users, on="user").drop("user").rename({"raw": "user"})
    return log_.join(items, on="item").drop("item").rename({"raw": "item"})


def _check_refit_champion(root: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    from negsamp.mlops.tracking import read_metrics_table

    reg = json.loads((root / "data/registry/registration.json").read_text())
    assert reg["promoted"] and reg["alias"] == "champion"
    assert reg["refit"]["refit"] is True and reg["served_model"] == "data/registry/refit/model"
    history = _history(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    mv = client.get_model_version(reg["model_name"], str(reg["version"]))
    assert mv.tags["refit"] == "yes" and mv.tags["refit_snapshot"] == "0"
    assert int(mv.tags["refit_positives"]) == history.height  # train, valid and test alike
    kept = json.loads((root / "data/models/default/history.json").read_text())
    assert 1 <= int(mv.tags["refit_epochs"]) <= len(kept)

    # the held-out evidence: what the evaluate stage measured, logged as it was
    evaluated = json.loads((root / "data/metrics/default/metrics.json").read_text())
    table = read_metrics_table(client, reg["run_id"])  # every number, as one MLflow table
    numbers = {k: v for k, v in evaluated.items() if isinstance(v, float) and math.isfinite(v)}
    assert numbers and all(table[k]["value"] == pytest.approx(v) for k, v in numbers.items())
    assert reg["value"] == pytest.approx(evaluated[reg["metric"]])

    # served top-K: never an item of the user's full history
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(f"models:/{reg['model_name']}@champion")
    users = history["user"].unique().sort()
    out = pl.from_pandas(
        served.predict(pd.DataFrame({"user": users.to_numpy()}), params={"k": K})
    ).select("user", "item")
    assert out["user"].n_unique() == users.len() and out.height == K * users.len()
    assert out.join(history, on=["user", "item"]).height == 0
    batch = pl.read_parquet(root / "data/recommendations/recommendations.parquet")
    assert batch["user"].n_unique() == users.len()
    assert batch.select("user", "item").join(history, on=["user", "item"]).height == 0
    manifest = json.loads((root / "data/recommendations/manifest.json").read_text())
    assert manifest["refit"] is True and manifest["model_dir"] == reg["served_model"]


def test_the_synthetic_default_serves_a_refit_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "proj")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.chdir(root)
    run_stages(root, "recommend")
    _check_refit_champion(root)


@pytest.mark.data
def test_movielens_100k_serves_a_refit_champion(
    ml100k: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        tmp_path / "proj", {"data": {"source": "movielens-100k", "path": str(ml100k)}}
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.chdir(root)
    run_stages(root, "recommend")
    _check_refit_champion(root)
    assert pl.read_parquet(root / "data/interim/interactions.parquet").height == 100_000
