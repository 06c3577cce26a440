"""Quiet, offline-friendly defaults for the stack, set before any of it is imported.

Every value is only a default: a variable already set in the environment wins.
State goes under the project folder, never the home folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def set_defaults(root: Path | None = None) -> None:
    root = (root or Path.cwd()).resolve()
    defaults = {
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "negsamp",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "DVC_NO_ANALYTICS": "1",
        "TQDM_MININTERVAL": "2",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
    if "PREFECT_API_URL" not in os.environ:
        os.environ.setdefault(
            "PREFECT_API_DATABASE_CONNECTION_URL",
            f"sqlite+aiosqlite:///{root / '.prefect' / 'prefect.db'}",
        )
