"""The deployments: `drift-check` on a cron schedule and `retrain` on demand.

Both carry a concurrency limit of one (extra runs are queued, never run twice at once).
`python -m flows.deployments` serves them against PREFECT_API_URL; with
`--start-server` it first starts a Prefect server on 127.0.0.1 (what `make serve` does).
prefect.yaml declares the same deployments on a work pool for `prefect deploy`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.drift import scheduled_drift_check
from flows.pipeline import retrain
from negsamp import config

ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def build(params: str = "params.yaml") -> list[Any]:
    """The RunnerDeployments for ``params`` (absolute path baked into their parameters)."""
    params = str(Path(params).resolve())
    cfg = config.load(params)
    return [
        scheduled_drift_check.to_deployment(
            name="drift-check",
            cron=cfg.schedule.cron,
            parameters={"params": params, "use_deployment": True},
            concurrency_limit=ONE_AT_A_TIME,
            description="Compare new data with the champion's; retrain when a signal fires.",
            tags=["negsamp"],
        ),
        retrain.to_deployment(
            name="retrain",
            parameters={"params": params},
            concurrency_limit=ONE_AT_A_TIME,
            description="The whole pipeline: train, evaluate, gate and register.",
            tags=["negsamp"],
        ),
    ]


def _start_server(port: int) -> subprocess.Popen:
    url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            os.environ["PREFECT_API_URL"] = url
            print(f"Prefect server on http://127.0.0.1:{port} (UI and API)")
            return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise SystemExit(f"the Prefect server did not answer on {url} within 120 s")


def main() -> None:
    from negsamp.env import set_defaults

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--start-server", action="store_true", help="start a server on 127.0.0.1")
    ap.add_argument("--port", type=int, default=4200)
    a = ap.parse_args()
    set_defaults()
    server = _start_server(a.port) if a.start_server else None
    try:
        from prefect import serve

        serve(*build(a.params))
    finally:
        if server:
            server.terminate()


if __name__ == "__main__":
    main()
