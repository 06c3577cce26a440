"""The pipeline flow: the same stage functions dvc.yaml calls, run as Prefect tasks.

ingest -> validate -> split -> candidates -> sample-negatives -> train -> evaluate
-> register, then the outputs are recorded with DVC (`dvc commit`, `dvc push` where a
remote is set) so that `dvc repro` afterwards finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from negsamp import config, dvcops
from negsamp.io import read_json
from negsamp.paths import Paths
from negsamp.stages import ORDER, module

# Deterministic failures (a failed expectation, a registry decision) are not retried.
RETRIES = {"validate": 0, "register": 0}


@task(name="dvc-record")
def record(root: str) -> dict[str, bool]:
    return dvcops.record(Path(root))


@flow(name="negsamp-pipeline", log_prints=True)
def pipeline(params: str = "params.yaml", record_outputs: bool = True) -> dict[str, Any]:
    """Run every stage in order on ``params``; returns the metrics and the registration."""
    logger = get_run_logger()
    cfg = config.load(params)
    paths = Paths(Path(params).resolve().parent)
    for name in ORDER:
        stage = task(name=name, retries=RETRIES.get(name, 1), retry_delay_seconds=2)(
            module(name).run
        )
        stage(cfg, paths)
    if record_outputs:
        record(str(paths.root))
    logger.info("pipeline finished")
    return {"metrics": read_json(paths.metrics), "registration": read_json(paths.registration)}
