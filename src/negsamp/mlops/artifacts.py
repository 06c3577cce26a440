"""Files of a logged run, fetched back: per-user metrics (``negsamp compare``), the
training pool manifest (the drift check's negative-popularity reference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from negsamp.mlops.errors import RegistrationError

PER_USER = "metrics/per_user.parquet"
POOL_MANIFEST = "pools/train_pool.manifest.json"


def download_per_user(run_id: str, uri: str, dst: Path) -> Path:
    """Fetch run ``run_id``'s per-user metrics (``metrics/per_user.parquet``) into ``dst``."""
    try:
        got = download_artifacts(
            run_id=run_id, artifact_path=PER_USER, dst_path=str(dst), tracking_uri=uri
        )
    except MlflowException as err:
        raise RegistrationError(
            f"MLflow run {run_id!r} at {uri} has no {PER_USER}: {err.message}"
        ) from None
    return Path(got)


def run_json(run_id: str, path: str, uri: str) -> Any:
    """The JSON artifact ``path`` of run ``run_id`` (raises what MLflow or json raise)."""
    return json.loads(
        Path(download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=uri)).read_text()
    )
