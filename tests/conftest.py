"""Shared fixtures: quiet, offline stack defaults and the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def ml100k() -> Path:
    path = SHARED_DATA / "movielens-100k" / "u.data"
    if not path.exists():
        pytest.skip(f"MovieLens-100k not found at {path} (../shared/data is optional)")
    return path
