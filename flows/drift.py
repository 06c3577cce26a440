"""The drift check: compare what the champion was trained on with what arrived since,
and retrain (then gate the challenger) when a signal fires or when forced.

Orchestration only: the signals are computed by ``negsamp.stages.drift``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import errors
from flows.artifacts import publish_drift
from negsamp import config
from negsamp.config import PARAMS_FILE, Config
from negsamp.paths import Paths
from negsamp.stages import drift as drift_stage

RETRAIN_DEPLOYMENT = "negsamp-retrain/retrain"


@flow(name="negsamp-drift-check", log_prints=True)
def drift_check(
    cfg: Config,
    root: str = ".",
    force: bool = False,
    use_deployment: bool = False,
    record_outputs: bool = True,
) -> dict[str, Any]:
    """Check drift in project ``root``; retrain when any signal fires (or ``force``).

    With ``use_deployment`` the retrain runs as the ``retrain`` deployment (on
    ``<root>/params.yaml``), whose concurrency limit of one makes overlapping retrains
    wait; otherwise as a subflow on ``cfg``.
    """
    errors.install()
    logger = get_run_logger()
    root = str(Path(root).resolve())
    report = task(
        name="drift-report",
        retries=1,
        retry_delay_seconds=5,
        retry_condition_fn=errors.retry_condition,
        cache_policy=NO_CACHE,
    )(drift_stage.run)(cfg, Paths(Path(root)))
    if not (force or report["fired"]):
        logger.info("no drift (%s): no retrain", report["summary"])
        out = {"retrained": False, "drift": report}
        publish_drift(out)
        return out
    why = "forced" if force and not report["fired"] else f"signals fired: {report['fired']}"
    logger.info("retraining: %s", why)
    if use_deployment:
        from prefect.deployments import run_deployment

        params = str(Path(root) / PARAMS_FILE)
        run = run_deployment(
            RETRAIN_DEPLOYMENT, parameters={"params": params, "record_outputs": record_outputs}
        )
        if not run.state or not run.state.is_completed():
            raise RuntimeError(f"retrain deployment run {run.id} ended {run.state}")
        result = run.state.result()
    else:
        from flows.engine import bind
        from flows.pipeline import pipeline

        result = bind(pipeline, cfg)(cfg, root=root, record_outputs=record_outputs)
    out = {
        "retrained": True,
        "reason": why,
        "drift": report,
        "registration": result["registration"],
    }
    publish_drift(out)
    return out


@flow(name="negsamp-scheduled-drift-check", log_prints=True, persist_result=True)
def scheduled_drift_check(
    params: str = PARAMS_FILE, use_deployment: bool = True, record_outputs: bool = True
) -> dict[str, Any]:
    """The drift-check deployment's entry point: parse ``params`` as it is when the scheduled
    run starts (appended data included), then run :func:`drift_check`."""
    cfg = config.load(params)
    root = str(Path(params).resolve().parent)
    return drift_check(cfg, root=root, use_deployment=use_deployment, record_outputs=record_outputs)
