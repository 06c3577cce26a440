"""What a pipeline run returns, read from the files its stages wrote (no Prefect import).

The flow returns it at the end of a run; ``negsamp run`` reads the same files when DVC
finds nothing changed since the last recorded run (:func:`unchanged`) and the flow is not
run at all: the recorded outputs are what it would have produced again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from negsamp import dvcops, faults
from negsamp.io import read_json
from negsamp.mlops.uri import tracking_uri
from negsamp.paths import Paths

log = logging.getLogger("negsamp.flows")


def collect(variants: list[str], paths: Paths) -> dict[str, Any]:
    """Each configuration's metrics, the comparison, the registration and the
    recommendations' manifest, as the stages wrote them under ``paths``."""
    return {
        "metrics": {v: read_json(paths.for_variant(v).metrics) for v in variants},
        "comparison": read_json(paths.comparison),
        "registration": read_json(paths.registration),
        "recommendations": read_json(paths.recommendations_manifest),
    }


def unchanged(paths: Paths) -> bool:
    """Whether a run would only redo the last recorded one: `dvc status` finds every stage
    of dvc.yaml (each configuration's, register's and recommend's included) as dvc.lock
    recorded it (deps, params, outputs), the registration went to the tracking store in use
    now and that store is still there, and no fault is armed (tests/integration/test_faults.py)."""
    if os.environ.get(faults.ENV) or not paths.registration.is_file():
        return False
    uri = read_json(paths.registration).get("tracking_uri")
    if uri != tracking_uri(paths.root):
        return False  # registered elsewhere (or never): register must run against this store
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return False  # the store was removed: its runs and versions must be made again
    return dvcops.up_to_date(paths.root)
