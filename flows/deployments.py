"""The deployments: `drift-check` on a cron schedule and `retrain` on demand.

Both carry a concurrency limit of one (extra runs are queued, never run twice at once).
`python -m flows.deployments` serves them against the Prefect server in PREFECT_API_URL;
with `--start-server` and no PREFECT_API_URL it first starts one on 127.0.0.1 (what
`make serve` does). Deployments, cron and timezone come from params.yaml only;
`--write-prefect-yaml` writes prefect.yaml (the same deployments on a work pool, for
`prefect deploy --all`) from it.

Prefect is imported only after PREFECT_API_URL is settled: Prefect freezes its settings at
import, and a serve process that imported it first talked to a stray ephemeral server on the
same database while its flow runs talked to the real one. Each server keeps concurrency
leases in its own memory, so every run's lease was unknown to the other server and the run
ended CANCELLED ("Deployment concurrency slot lost during provisioning"), issue #13.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from negsamp import config
from negsamp.config import Config

DRIFT_CHECK = dict(
    name="drift-check",
    description="Compare new data with the champion's; retrain when a signal fires.",
)
RETRAIN = dict(
    name="retrain", description="The whole pipeline: train, evaluate, gate and register."
)
TAGS = ["negsamp"]
HEALTH_TIMEOUT_S = 120


def build(params: str = "params.yaml") -> list[Any]:
    """The RunnerDeployments for ``params`` (absolute path baked into their parameters)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    from flows.drift import scheduled_drift_check
    from flows.pipeline import retrain

    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
    )
    params = str(Path(params).resolve())
    cfg = config.load(params)
    return [
        scheduled_drift_check.to_deployment(
            **DRIFT_CHECK,
            schedule=Cron(cfg.schedule.cron, timezone=cfg.schedule.timezone),
            parameters={"params": params, "use_deployment": True},
            concurrency_limit=one_at_a_time,
            tags=TAGS,
        ),
        retrain.to_deployment(
            **RETRAIN,
            parameters={"params": params},
            concurrency_limit=one_at_a_time,
            tags=TAGS,
        ),
    ]


def prefect_yaml(cfg: Config) -> str:
    """prefect.yaml for ``cfg``: the deployments of :func:`build` on ``schedule.work_pool``,
    run from /workspace (the docker compose worker's checkout)."""
    doc = {
        "name": "negsamp",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "/workspace"}}],
        "deployments": [
            {
                **DRIFT_CHECK,
                "entrypoint": "flows/drift.py:scheduled_drift_check",
                "parameters": {"params": config.PARAMS_FILE, "use_deployment": True},
                "schedules": [{"cron": cfg.schedule.cron, "timezone": cfg.schedule.timezone}],
                "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
                "work_pool": {"name": cfg.schedule.work_pool},
                "tags": list(TAGS),
            },
            {
                **RETRAIN,
                "entrypoint": "flows/pipeline.py:retrain",
                "parameters": {"params": config.PARAMS_FILE},
                "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
                "work_pool": {"name": cfg.schedule.work_pool},
                "tags": list(TAGS),
            },
        ],
    }
    head = (
        "# GENERATED from params.yaml (schedule.*) by `python -m flows.deployments"
        " --write-prefect-yaml`;\n# do not edit. The deployments of flows/deployments.py on a"
        " work pool, for `prefect deploy --all`\n# against a Prefect server (the docker compose"
        " worker runs the pool in /workspace).\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, width=100)


def _healthy(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/health", timeout=2)
        return True
    except OSError:
        return False


def _start_server(port: int) -> subprocess.Popen:
    """``prefect server start`` on 127.0.0.1:``port`` (its own process group); returns once
    /api/health answers."""
    url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        start_new_session=True,
    )
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"`prefect server start` exited ({proc.returncode}); see its output")
        if _healthy(url):
            return proc
        time.sleep(1)
    _stop(proc)
    raise SystemExit(f"the Prefect server did not answer on {url} within {HEALTH_TIMEOUT_S} s")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM ``proc``'s process group, SIGKILL after 20 s (servers run in children)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def connect(start_server: bool = False, port: int = 4200) -> subprocess.Popen | None:
    """Settle which Prefect server this process (and every flow run it spawns) talks to,
    before Prefect is imported; returns the server process it started, if any.

    PREFECT_API_URL set: that server. Otherwise, with ``start_server``: a server already
    answering on 127.0.0.1:``port``, else a new one there. Ephemeral mode is switched off,
    so a server that is missing is an error, never a stray temporary one.
    """
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    server = None
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        if not start_server:
            raise SystemExit(
                "no Prefect server: export PREFECT_API_URL=http://127.0.0.1:4200/api for a "
                "running `prefect server start`, or pass --start-server (`make serve`)"
            )
        url = f"http://127.0.0.1:{port}/api"
        if not _healthy(url):
            server = _start_server(port)
        os.environ["PREFECT_API_URL"] = url
    elif not _healthy(url):
        raise SystemExit(f"PREFECT_API_URL={url} does not answer: start that server first")
    if "prefect" in sys.modules:  # imported earlier: make it re-read the environment
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    from prefect.settings import get_current_settings

    assert get_current_settings().api.url == url, "Prefect did not pick up PREFECT_API_URL"
    print(f"Prefect server: {url.removesuffix('/api')} (UI and API)", flush=True)
    return server


def main(argv: list[str] | None = None) -> None:
    from negsamp.env import set_defaults

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument(
        "--start-server",
        action="store_true",
        help="without PREFECT_API_URL: use or start a server on 127.0.0.1:PORT",
    )
    ap.add_argument("--port", type=int, default=4200)
    ap.add_argument(
        "--write-prefect-yaml",
        metavar="PATH",
        help="write the work-pool deployments (prefect.yaml) from --params and exit",
    )
    a = ap.parse_args(argv)
    if a.write_prefect_yaml:
        Path(a.write_prefect_yaml).write_text(prefect_yaml(config.load(a.params)))
        return
    set_defaults()
    # SIGTERM (`kill`, a supervisor, `negsamp simulate` stopping it) must run the finally
    # below, or a server this process started outlives it (Prefect's serve() installs its
    # own graceful handler once it runs; this covers the start-up before that)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    server = connect(a.start_server, a.port)
    try:
        from prefect import serve

        serve(*build(a.params))
    finally:
        if server:
            _stop(server)


if __name__ == "__main__":
    main()
