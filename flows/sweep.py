"""The sweep flow: every configuration of ``sweep.configs`` side by side (``negsamp sweep``).

The same tasks as the pipeline flow (configurations trained ``sweep.concurrency`` at a
time), under its own flow name so sweeps stand apart in the Prefect UI. MLflow gets one
parent run with a child run per configuration and the comparison report; the best
configuration goes through the champion gate.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.pipeline import run_all
from negsamp.config import Config


@flow(name="negsamp-sweep", log_prints=True)
def sweep(cfg: Config, root: str = ".", record_outputs: bool = True) -> dict[str, Any]:
    """Train, evaluate and compare every configuration; register the best (on validation)."""
    return run_all(cfg, root, record_outputs)
