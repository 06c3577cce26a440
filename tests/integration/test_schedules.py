"""Schedules that fire, against a real `prefect server` on 127.0.0.1 (issue #13, point 1).

No test harness: a server with its own home and sqlite database, `python -m flows.deployments`
serving the real deployments as `make serve` does, and a one-minute cron fired by the
server's scheduler. Regressions guarded: the scheduler never created a run (SQLAlchemy 2.1),
runs ended CANCELLED "Deployment concurrency slot lost during provisioning" (a stray
ephemeral server beside the real one), and schedule.timezone was ignored.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.browser import _stop_group, free_port, wait_http
from tests.integration.conftest import REPO

pytestmark = pytest.mark.slow

TZ = "Europe/Paris"
TIMEOUT_S = 240


def _serve(cmd: list[str], cwd: Path, log: Path, **env: str) -> subprocess.Popen:
    """``cmd`` in ``cwd`` (its own code first on the path), with no Prefect setting but ``env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | env
    env["PYTHONPATH"] = os.pathsep.join([str(cwd / "src"), str(cwd)])
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "5"
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _until(what: str, check: Callable[[], Any], logs: list[Path], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{tails}")


def test_a_scheduled_run_fires_and_a_second_retrain_waits_for_the_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make serve`'s command starts the server and serves the real deployments; a tiny
    flow served beside them on a one-minute cron shows the server's scheduler firing."""
    from negsamp.config import PARAMS_FILE
    from tests.integration.conftest import make_project

    project = make_project(
        (tmp_path / "proj").resolve(), {"schedule": {"cron": "0 3 * * *", "timezone": TZ}}
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    serve_log, tick_log = tmp_path / "serve.log", tmp_path / "tick.log"
    logs = [serve_log, tick_log]
    port, home = free_port(), tmp_path / "prefect-home"
    api = f"http://127.0.0.1:{port}/api"
    t0 = time.monotonic()
    serve = [sys.executable, "-m", "flows.deployments", "--params", str(project / PARAMS_FILE)]
    procs = [
        _serve(
            [*serve, "--start-server", "--port", str(port)],
            project,
            serve_log,
            PREFECT_HOME=str(home),
            PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            # the scheduler looks for deployments to schedule every 10 s instead of 60 s
            PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="10",
        )
    ]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with serve_log.open() as log:
            wait_http(f"{api}/health", procs[0], 150, log)
        procs.append(
            _serve(
                [sys.executable, str(REPO / "tests/integration/scheduled_tick.py"), TZ],
                REPO,
                tick_log,
                PREFECT_API_URL=api,
                PREFECT_HOME=str(tmp_path / "tick-home"),
            )
        )
        monkeypatch.setenv("PREFECT_API_URL", api)
        refresh_global_settings_context()
        # temporary_settings: the session's prefect_test_harness (other tests) sets its own
        # API URL the same way, and the innermost setting wins; the env var alone would not
        with (
            temporary_settings(updates={PREFECT_API_URL: api}),
            get_client(sync_client=True) as client,
        ):

            def deployment(name: str) -> Any:
                try:
                    return client.read_deployment_by_name(name)
                except Exception:
                    return None

            def runs_of(dep: Any) -> list[Any]:
                f = DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
                return client.read_flow_runs(deployment_filter=f)

            retrain = _until("retrain served", lambda: deployment("negsamp-retrain/retrain"),
                             logs, 120)  # fmt: skip
            check = deployment("negsamp-scheduled-drift-check/drift-check")
            [sched] = check.schedules
            assert (sched.schedule.cron, sched.schedule.timezone) == ("0 3 * * *", TZ)
            assert (
                check.global_concurrency_limit.limit == retrain.global_concurrency_limit.limit == 1
            )

            # two manual retrains at once: the second waits for the slot, then completes
            params = {"params": str(project / PARAMS_FILE), "record_outputs": False}
            first = client.create_flow_run_from_deployment(retrain.id, parameters=params)
            second = client.create_flow_run_from_deployment(retrain.id, parameters=params)

            # the scheduler fills the drift check's Upcoming runs at 03:00 in TZ
            upcoming = _until("drift-check upcoming runs", lambda: runs_of(check), logs, 60)
            assert {r.expected_start_time.astimezone(ZoneInfo(TZ)).hour for r in upcoming} == {3}

            tick = _until("tick served", lambda: deployment("negsamp-tick/every-minute"), logs, 60)
            fired = _until(
                "a scheduled tick run completed",
                lambda: [r for r in runs_of(tick) if r.auto_scheduled and r.state.is_completed()],
                logs,
                TIMEOUT_S - (time.monotonic() - t0),
            )
            print(f"scheduled run completed {time.monotonic() - t0:.0f} s after serve started; "
                  f"created {fired[0].created}, ran at {fired[0].start_time}")  # fmt: skip

            def both_final() -> bool:
                return all(client.read_flow_run(r.id).state.is_final() for r in (first, second))

            _until("both retrains final", both_final, logs, TIMEOUT_S)
            print(f"both retrains final {time.monotonic() - t0:.0f} s after serve started")
            for run in (first, second):
                history = [s.name for s in client.read_flow_run_states(run.id)]
                assert "Cancelled" not in history, history
                assert client.read_flow_run(run.id).state.is_completed(), history
            waited = [[s.name for s in client.read_flow_run_states(r.id)] for r in (first, second)]
            assert any("AwaitingConcurrencySlot" in h for h in waited), waited
    finally:
        monkeypatch.undo()
        refresh_global_settings_context()
        for p in procs[::-1]:
            _stop_group(p)
    with pytest.raises(OSError):  # stopping `make serve`'s command stopped its server too
        urllib.request.urlopen(f"{api}/health", timeout=2)
    for log in logs:  # one server, never a stray temporary one; its scheduler never failed
        text = log.read_text()
        assert "temporary server" not in text.lower(), text[-3000:]
        assert "InvalidRequestError" not in text, text[-3000:]
