"""A sqlite MLflow store per test, copied from one migrated once per session (about 6 s each
otherwise: MLflow creates and migrates its tables on the first open)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # creates and migrates the tables
    return db


@pytest.fixture
def store(tmp_path: Path, migrated_db: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An MlflowClient on ``sqlite:///<tmp_path>/mlflow.db``, set as MLFLOW_TRACKING_URI."""
    from mlflow import MlflowClient

    shutil.copyfile(migrated_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return MlflowClient(uri)
