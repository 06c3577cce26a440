"""The drift check: compare what the champion was trained on with what arrived since,
and retrain (then gate the challenger) when a signal fires or when forced.

Orchestration only: the signals are computed by ``negsamp.stages.drift``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from negsamp import config
from negsamp.paths import Paths
from negsamp.stages import drift as drift_stage

RETRAIN_DEPLOYMENT = "negsamp-pipeline/retrain"


@flow(name="negsamp-drift-check", log_prints=True)
def drift_check(
    params: str = "params.yaml",
    force: bool = False,
    use_deployment: bool = False,
    record_outputs: bool = True,
) -> dict[str, Any]:
    """Check drift; retrain when any signal fires (or ``force``).

    With ``use_deployment`` the retrain runs as the ``retrain`` deployment, whose
    concurrency limit of one makes overlapping retrains wait; otherwise as a subflow.
    """
    logger = get_run_logger()
    params = str(Path(params).resolve())
    cfg = config.load(params)
    report = task(name="drift-report", retries=1, retry_delay_seconds=5)(drift_stage.run)(
        cfg, Paths(Path(params).parent)
    )
    if not (force or report["fired"]):
        logger.info("no drift (%s): no retrain", report["summary"])
        return {"retrained": False, "drift": report}
    why = "forced" if force and not report["fired"] else f"signals fired: {report['fired']}"
    logger.info("retraining: %s", why)
    if use_deployment:
        from prefect.deployments import run_deployment

        run = run_deployment(
            RETRAIN_DEPLOYMENT, parameters={"params": params, "record_outputs": record_outputs}
        )
        if not run.state or not run.state.is_completed():
            raise RuntimeError(f"retrain deployment run {run.id} ended {run.state}")
        result = run.state.result()
    else:
        from flows.pipeline import pipeline

        result = pipeline(params=params, record_outputs=record_outputs)
    return {
        "retrained": True,
        "reason": why,
        "drift": report,
        "registration": result["registration"],
    }
