"""`negsamp simulate --days N`: N days of production, day by day, against real servers.

In its own workspace, ``<project>/.negsamp/simulation/`` (:mod:`negsamp.workspace`: own
params.yaml, git, DVC, MLflow store and registered model ``negsamp-simulation``; the
project is not touched), the simulation

1. starts a real Prefect server on 127.0.0.1 and serves the deployments, as `make serve`
   does (``python -m flows.deployments --start-server``), and trains the first champion
   through the ``retrain`` deployment;
2. starts `negsamp serve` on the champion alias and a client thread that asks it for
   top-K every ``request_every`` seconds, all the simulation long;
3. each day appends that day's batch (:mod:`negsamp.simulation`: quiet days, a slow
   popularity shift, a broken export, a sudden catalog change) with `negsamp ingest
   --append`, then runs the drift check through the served ``drift-check`` deployment (the
   one the cron fires), which retrains and gates through the ``retrain`` deployment when a
   signal fires;
4. writes ``report/simulation.{json,md}`` in the workspace: per day the signals, whether it
   retrained, the gate's decision, the champion and its held-out metric, and the requests
   served (and failed) that day; per alias switch, the requests answered while it happened.

The checks the report makes (and `negsamp simulate` exits non-zero on): every valid batch
ingested exactly once, the broken one refused with nothing written, no promotion of a model
worse than the champion it replaced on the same split, and no failed request.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.deployments import _healthy as _up  # GET <url>/health
from flows.deployments import _stop
from negsamp import config, simulation, workspace
from negsamp.config import PARAMS_FILE, Config
from negsamp.io import atomic_write, md5_file, write_parquet
from negsamp.paths import Paths

log = logging.getLogger("negsamp.simulate")

KIND = "simulation"
DRIFT_CHECK = "negsamp-scheduled-drift-check/drift-check"
RETRAIN = "negsamp-retrain/retrain"
START_TIMEOUT_S = 240
RUN_TIMEOUT_S = 3600
SWITCH_WINDOW_S = 5.0  # requests this close to a model swap count as "during the switch"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def _spawn(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``cmd`` in its own process group (so stopping it stops its children), output to ``log``."""
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _wait(what: str, check: Any, proc: subprocess.Popen, logfile: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}); see {logfile}")
        if check():
            return
        time.sleep(1)
    raise RuntimeError(f"{what} was not ready within {timeout:.0f} s; see {logfile}")


@dataclass
class Client:
    """Asks the serving endpoint for top-``k`` of a few users every ``every`` seconds in a
    thread; keeps (time, ok, version, detail) per request."""

    url: str
    users: list[Any]
    k: int
    every: float
    log: list[tuple[float, bool, int | None, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def ask(self) -> tuple[float, bool, int | None, str]:
        body = {"dataframe_records": [{"user": u} for u in self.users], "params": {"k": self.k}}
        req = urllib.request.Request(
            f"{self.url}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        t = time.time()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                version = int(r.headers.get("X-Model-Version") or 0) or None
                rows = json.loads(r.read())["predictions"]
            per_user: dict[str, int] = {}
            for row in rows:
                per_user[str(row["user"])] = per_user.get(str(row["user"]), 0) + 1
            ok = sorted(per_user.values()) == [self.k] * len(self.users)
            return t, ok, version, "" if ok else f"rows per user {per_user}"
        except Exception as err:  # noqa: BLE001 - every failure is counted, none stops the run
            return t, False, None, f"{type(err).__name__}: {err}"[:300]

    def start(self) -> threading.Thread:
        def loop() -> None:
            while not self._stop.is_set():
                self.log.append(self.ask())
                self._stop.wait(self.every)

        th = threading.Thread(target=loop, name="serving-client", daemon=True)
        th.start()
        return th

    def stop(self) -> None:
        self._stop.set()

    def between(self, t0: float, t1: float) -> list[tuple[float, bool, int | None, str]]:
        return [r for r in list(self.log) if t0 <= r[0] < t1]


def _connect(api: str, home: Path) -> None:
    """Point this process's Prefect at ``api`` (before or after Prefect was imported), with
    the served flows' home, where their persisted results are read from."""
    os.environ["PREFECT_API_URL"] = api
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] = "true"
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    if "prefect" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def _served() -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            for name in (RETRAIN, DRIFT_CHECK):
                client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


def _run_deployment(name: str, parameters: dict[str, Any]) -> Any:
    """Run deployment ``name`` on the server and wait; its result (results are persisted)."""
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters=parameters, timeout=RUN_TIMEOUT_S)
    if not run.state or not run.state.is_completed():
        raise RuntimeError(f"deployment {name} run {run.id} ended {run.state}")
    return run.state.result()


def _champion(uri: str, name: str) -> dict[str, Any] | None:
    from negsamp.mlops.listing import versions

    return next((v for v in versions(name, uri) if "champion" in v["aliases"]), None)


def _append(params: Path, batch_file: Path, paths: Paths) -> tuple[str, dict[str, Any] | None]:
    """`negsamp ingest --append` on ``batch_file``: ("ingested", entry) or ("rejected: why",
    None) after checking that a refusal left params.yaml and data/raw/appends/ as they were."""
    from negsamp.cli.common import user_errors
    from negsamp.stages import ingest

    before = (params.read_bytes(), sorted((paths.root / "data/raw/appends").glob("*")))
    try:
        return "ingested", ingest.append_snapshot(params, batch_file, paths)
    except user_errors() as err:
        after = (params.read_bytes(), sorted((paths.root / "data/raw/appends").glob("*")))
        if after != before:
            raise RuntimeError(
                f"a refused batch ({batch_file}) changed {params} or data/raw/appends/"
            ) from err
        why = str(err).splitlines()[0].replace(f"{paths.root}/", "")  # paths in the workspace
        return f"rejected: {why}", None


def simulate(
    cfg: Config,
    root: str = ".",
    days: int = 30,
    rows_per_day: int | None = None,
    request_every: float = 0.5,
    poll: float = 1.0,
) -> dict[str, Any]:
    """Run the simulation of ``days`` days for the project at ``root`` (see the module doc);
    returns the report (also written to the workspace's report/ folder)."""
    day_plan = simulation.plan(days)
    ws = workspace.create(Path(root), cfg, KIND)
    params, paths = ws / PARAMS_FILE, Paths(ws)
    uri = workspace.tracking_uri(ws)
    sim = config.load(params)
    rows = rows_per_day or max(
        1, round(sim.data.synthetic.n_interactions / sim.data.synthetic.days)
    )
    logs, incoming, out = ws / "logs", ws / "incoming", ws / "report"
    for d in (logs, incoming, out):
        d.mkdir()
    print(f"simulation workspace {ws} (MLflow {uri}); your project is not touched", flush=True)

    port, serve_port = _free_port(), _free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = ws / ".prefect"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "MLFLOW_TRACKING_URI": uri,
    }
    procs: list[subprocess.Popen] = []
    client: Client | None = None
    records: list[dict[str, Any]] = []
    try:
        deploy_log = logs / "deployments.log"
        procs.append(
            _spawn(
                [
                    sys.executable,
                    "-m",
                    "flows.deployments",
                    "--params",
                    str(params),
                    "--start-server",
                    "--port",
                    str(port),
                ],
                ws,
                env,
                deploy_log,
            )  # fmt: skip
        )
        _wait("the Prefect server", lambda: _up(api), procs[0], deploy_log,
              START_TIMEOUT_S)  # fmt: skip
        os.environ["MLFLOW_TRACKING_URI"] = uri
        _connect(api, home)
        _wait("the served deployments", _served, procs[0], deploy_log, START_TIMEOUT_S)
        print(f"Prefect server {api.removesuffix('/api')}: deployments served", flush=True)

        t0 = time.time()
        first = _run_deployment(RETRAIN, {"params": str(params), "record_outputs": False})
        reg = first["registration"]
        print(f"day 0: trained {reg['model_name']} v{reg['version']} ({reg['reason']}) "
              f"in {time.time() - t0:.0f} s", flush=True)  # fmt: skip

        serve_log = logs / "serve.log"
        procs.append(
            _spawn(
                [
                    str(Path(sys.executable).with_name("negsamp")),
                    "serve",
                    "--params",
                    str(params),
                    "--port",
                    str(serve_port),
                    "--poll",
                    str(poll),
                ],
                ws,
                env,
                serve_log,
            )  # fmt: skip
        )
        url = f"http://127.0.0.1:{serve_port}"
        _wait("negsamp serve", lambda: _up(url), procs[-1], serve_log, START_TIMEOUT_S)
        users = [1, 2, 3, 10**9]  # three users of the base log and one nobody knows
        client = Client(url, users, sim.recommend.k, request_every)
        client.start()

        batches = simulation.batches(day_plan, sim.data.synthetic, sim.base.seed, rows)
        for day, batch in zip(day_plan, batches, strict=True):
            t_day = time.time()
            f = incoming / f"day-{day.day:02d}.parquet"
            write_parquet(f, batch)
            ingest, entry = _append(params, f, paths)
            result = _run_deployment(
                DRIFT_CHECK, {"params": str(params), "use_deployment": True,
                              "record_outputs": False},
            )  # fmt: skip
            reg = result.get("registration") or {}
            champ = _champion(uri, sim.registry.model_name)
            answered = client.between(t_day, time.time())
            rec = {
                **simulation.day_record(day),
                "rows": batch.height,
                "md5": entry["md5"] if entry else md5_file(f),
                "ingest": ingest,
                "snapshot": entry["snapshot"] if entry else None,
                "signals": result["drift"]["fired"],
                "drift_summary": result["drift"]["summary"],
                "retrained": result["retrained"],
                "promoted": bool(reg.get("promoted")),
                "gate": reg.get("reason") if result["retrained"] else None,
                "challenger_value": reg.get("value"),
                "champion_value_before": reg.get("champion_value_before"),
                "champion": None if champ is None else f"v{champ['version']}",
                "champion_metric": None if champ is None else champ["metric_value"],
                "requests": len(answered),
                "errors": sum(not ok for _, ok, _, _ in answered),
                "error_examples": [d for _, ok, _, d in answered if not ok][:3],
                "served_versions": sorted({f"v{v}" for _, ok, v, _ in answered if v}),
                "seconds": round(time.time() - t_day, 1),
            }
            records.append(rec)
            print(f"day {day.day:2d} {day.kind:<7} drift {day.drift:.2f}: {ingest[:60]}; "
                  f"{rec['drift_summary']}; "
                  f"{'retrained: ' + str(rec['gate']) if rec['retrained'] else 'no retrain'}; "
                  f"champion {rec['champion']}; {rec['requests']} requests, "
                  f"{rec['errors']} errors", flush=True)  # fmt: skip
        time.sleep(max(2 * poll, 1.0))  # the last switch reaches the server
        client.stop()
        state = _get(f"{url}/model")
    finally:
        if client is not None:
            client.stop()
        for p in procs[::-1]:
            _stop(p)
    switches = []
    for w in state["switches"]:  # the requests answered around each switch
        during = client.between(
            w["detected_at"] - SWITCH_WINDOW_S, w["swapped_at"] + SWITCH_WINDOW_S
        )
        switches.append({**w, "requests": len(during), "errors": sum(not r[1] for r in during)})
    report = {
        "model_name": sim.registry.model_name,
        "metric": sim.registry.metric,
        "rows_per_day": rows,
        "seed": sim.base.seed,
        "k": sim.recommend.k,
        "request_every_s": request_every,
        "switch_window_s": SWITCH_WINDOW_S,
        "deployment": DRIFT_CHECK,
        "prefect_api": api,
        "workspace": str(ws),
        "tracking_uri": uri,
        "days": records,
        "switches": switches,
        "served_now": None if state["version"] is None else f"v{state['version']}",
        "summary": simulation.summary(records, switches),
    }
    report["problems"] = problems(report, paths)
    atomic_write(out / "simulation.json", json.dumps(report, indent=2, default=str).encode())
    atomic_write(out / "simulation.md", simulation.markdown(report).encode())
    report["files"] = [str(out / "simulation.json"), str(out / "simulation.md")]
    return report


def problems(report: dict[str, Any], paths: Paths) -> list[str]:
    """What went wrong, in sentences (empty when the run held): a valid batch not ingested
    exactly once, a broken one accepted, a promotion over a better champion, a failed
    request or an alias switch the server never made."""
    out = []
    days = report["days"]
    ingested = [d for d in days if d["ingest"] == "ingested"]
    for d in days:
        if (d["kind"] == "broken") == (d["ingest"] == "ingested"):
            out.append(f"day {d['day']} ({d['kind']}): {d['ingest']}")
    appends = config.load(paths.root / PARAMS_FILE).data.appends
    if [a.md5 for a in appends] != [d["md5"] for d in ingested]:
        out.append(
            f"data.appends holds {len(appends)} batches, not the {len(ingested)} valid days once each"
        )
    for d in days:
        before, value = d["champion_value_before"], d["challenger_value"]
        if d["promoted"] and before is not None and value is not None and value < before:
            out.append(f"day {d['day']}: promoted {value:.4f} over a champion at {before:.4f}")
        if d["errors"]:
            out.append(f"day {d['day']}: {d['errors']} failed requests, e.g. {d['error_examples']}")
    final = days[-1]["champion"] if days else None
    if final and report["served_now"] != final:
        out.append(f"the server answers with {report['served_now']}, not the champion {final}")
    return out
