"""`negsamp demo-drift`: a simulated stream of three windows (no drift, mild, strong).

The demo runs in its own workspace, ``<project>/.negsamp/demo/`` (see
:mod:`negsamp.workspace`): its own params.yaml, git repository, DVC project, MLflow store
and registered model (``negsamp-demo``), so the project's files, git history, params.yaml
and registry stay exactly as they were (#13). There the pipeline runs once, then each
window is appended as a new data snapshot and the drift check runs: with the default
thresholds it skips, skips, and retrains on the strong window.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.drift import drift_check
from flows.pipeline import pipeline
from negsamp import config, io, workspace
from negsamp.config import PARAMS_FILE, Config
from negsamp.data.stream import windows
from negsamp.paths import Paths
from negsamp.stages import ingest

DRIFTS = (0.0, 0.1, 1.0)


@flow(name="negsamp-demo-drift", log_prints=True)
def demo_drift(cfg: Config, root: str = ".", drifts: tuple[float, ...] = DRIFTS) -> dict[str, Any]:
    """Run the demo in a fresh workspace under project ``root`` (``cfg`` with synthetic data,
    no appends, the demo's registered model); returns the workspace, its tracking URI and
    model name, and one outcome per window."""
    logger = get_run_logger()
    ws = workspace.create(Path(root), cfg)
    uri = workspace.tracking_uri(ws)
    params, paths = ws / PARAMS_FILE, Paths(ws)
    logger.info("demo workspace %s (MLflow store %s); the project is not touched", ws, uri)
    outcomes = []
    with workspace.tracking_at(uri):
        demo = config.load(params)
        pipeline(demo, root=str(ws), record_outputs=False)
        stream = windows(demo.data.synthetic, demo.base.seed, list(drifts))
        for i, (d, batch) in enumerate(zip(drifts, stream, strict=True), start=1):
            with tempfile.TemporaryDirectory() as tmp:
                f = Path(tmp) / f"window-{i}.parquet"
                io.write_parquet(f, batch)
                ingest.append_snapshot(params, f, paths)
            # each append changed the workspace's data.appends: read it anew
            result = drift_check(config.load(params), root=str(ws), record_outputs=False)
            verdict = "retrain" if result["retrained"] else "skip"
            summary = result["drift"]["summary"]
            logger.info("window %d (drift %.1f): %s - %s", i, d, verdict, summary)
            outcomes.append(
                {
                    "window": i,
                    "level": d,
                    "verdict": verdict,
                    "summary": summary,
                    "fired": result["drift"]["fired"],
                    "registration": result.get("registration"),
                }
            )
    return {
        "workspace": str(ws),
        "tracking_uri": uri,
        "model_name": demo.registry.model_name,
        "outcomes": outcomes,
    }
