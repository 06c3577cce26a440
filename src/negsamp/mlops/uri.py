"""Where the MLflow tracking store and model registry are (no MLflow import: instant)."""

from __future__ import annotations

import os
from pathlib import Path


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<abs root>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"
