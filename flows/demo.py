"""`negsamp demo-drift`: a simulated stream of three windows (no drift, mild, strong).

Each window is appended as a new data snapshot, then the drift check runs: with the
default thresholds it skips, skips, and retrains on the strong window.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.drift import drift_check
from flows.pipeline import pipeline
from negsamp import config, io
from negsamp.config import PARAMS_FILE, Config
from negsamp.data.stream import windows
from negsamp.paths import Paths
from negsamp.stages import ingest

DRIFTS = (0.0, 0.1, 1.0)


@flow(name="negsamp-demo-drift", log_prints=True)
def demo_drift(
    cfg: Config, root: str = ".", drifts: tuple[float, ...] = DRIFTS
) -> list[dict[str, Any]]:
    """Append three simulated windows to ``<root>/params.yaml``'s data and check drift after
    each (each append changes params.yaml's data.appends, so the check reads it anew)."""
    logger = get_run_logger()
    params = Path(root).resolve() / PARAMS_FILE
    paths = Paths(params.parent)
    if cfg.data.source != "synthetic":
        raise ValueError("demo-drift streams synthetic windows: set data.source=synthetic")
    if not (paths.registration.exists()):
        logger.info("no registered model yet: running the pipeline once first")
        pipeline(cfg, root=str(paths.root))
    outcomes = []
    stream = windows(cfg.data.synthetic, cfg.base.seed, list(drifts))
    for i, (d, batch) in enumerate(zip(drifts, stream, strict=True), start=1):
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / f"window-{i}.parquet"
            io.write_parquet(f, batch)
            ingest.append_snapshot(params, f, paths)
        result = drift_check(config.load(params), root=str(paths.root))
        verdict = "retrain" if result["retrained"] else "skip"
        logger.info("window %d (drift %.1f): %s - %s", i, d, verdict, result["drift"]["summary"])
        outcomes.append(
            {
                "window": i,
                "level": d,
                "verdict": verdict,
                "summary": result["drift"]["summary"],
                "fired": result["drift"]["fired"],
                "registration": result.get("registration"),
            }
        )
    return outcomes
