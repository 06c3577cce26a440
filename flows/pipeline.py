"""The pipeline flow: the same stage functions dvc.yaml calls, run as Prefect tasks.

synthesize -> ingest -> validate -> split -> candidates, then for every configuration in
``sweep.configs`` (``sweep.concurrency`` at a time) sample-negatives -> train -> evaluate,
then register the best one through the champion gate, and finally record the outputs with
DVC (`dvc commit`, `dvc push` where a remote is set) so `dvc repro` finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from negsamp import config, dvcops
from negsamp.io import read_json
from negsamp.paths import Paths
from negsamp.stages import ORDER, PER_VARIANT, module

# Deterministic failures (a failed expectation, a registry decision) are not retried.
RETRIES = {"validate": 0, "register": 0}


def _task(name: str):  # noqa: ANN202 - a Prefect Task
    return task(name=name, retries=RETRIES.get(name, 1), retry_delay_seconds=2)(module(name).run)


@task(name="dvc-record")
def record(root: str) -> dict[str, bool]:
    return dvcops.record(Path(root))


@flow(name="negsamp-pipeline", log_prints=True)
def pipeline(params: str = "params.yaml", record_outputs: bool = True) -> dict[str, Any]:
    """Run every stage on ``params``; returns the metrics of each configuration and the registration."""
    logger = get_run_logger()
    cfg = config.load(params)
    paths = Paths(Path(params).resolve().parent)
    shared = [n for n in ORDER if n not in PER_VARIANT and n != "register"]
    chain = [n for n in ORDER if n in PER_VARIANT]
    for name in shared:
        _task(name)(cfg, paths)
    tasks = {name: _task(name) for name in chain}
    variants = cfg.variants
    for lo in range(0, len(variants), cfg.sweep.concurrency):
        last = []
        for v in variants[lo : lo + cfg.sweep.concurrency]:
            fut = None
            for name in chain:
                fut = (
                    tasks[name]
                    .with_options(task_run_name=f"{name}[{v}]")
                    .submit(cfg, paths, v, wait_for=[fut] if fut else [])
                )
            last.append(fut)
        for fut in last:
            fut.result()
    _task("register")(cfg, paths)
    if record_outputs:
        record(str(paths.root))
    logger.info("pipeline finished: %d configuration(s)", len(variants))
    return {
        "metrics": {v: read_json(paths.for_variant(v).metrics) for v in variants},
        "registration": read_json(paths.registration),
    }
