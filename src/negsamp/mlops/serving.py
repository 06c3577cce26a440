"""Serving that follows a registry alias: `negsamp serve` answers through every alias switch.

`mlflow models serve -m models:/<name>@champion` resolves the alias once, at start-up: when
the gate promotes a new champion, the server keeps answering with the old one until someone
restarts it, and a restart is a gap in service. This server speaks MLflow's scoring
protocol (``/invocations``, ``/ping``, ``/health``, ``/version``: MLflow's own request
parsing and response encoding, :func:`mlflow.pyfunc.scoring_server.invocations`), and a
background thread reads the alias every ``poll_s`` seconds. When it points at another
version, that version is loaded beside the one serving and swapped in with one reference
assignment: every request is answered by one complete model, the old one until the new
one is ready, and no request waits for a load (issue #13, point 6).

Each response names the version that answered in the ``X-Model-Version`` header;
``GET /model`` returns {name, alias, version, loaded_at, switches, poll_s, last_error}, each
switch as {from, to, detected_at, swapped_at} (unix seconds: the old version answered
every request in between).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mlflow
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from mlflow import MlflowClient

from negsamp.mlops.champion import alias_version

log = logging.getLogger(__name__)

ENV = "NEGSAMP_SERVE_CONFIG"  # the server's settings, for uvicorn's worker processes


@dataclass
class _Loaded:
    version: int
    model: Any  # mlflow.pyfunc.PyFuncModel
    schema: Any
    loaded_at: float


@dataclass
class AliasFollower:
    """The model version behind ``models:/<name>@<alias>`` in ``uri``, kept current."""

    uri: str
    name: str
    alias: str = "champion"
    poll_s: float = 10.0
    current: _Loaded | None = None
    switches: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def refresh(self) -> bool:
        """Read the alias once; load and swap in its version when it changed. Returns whether
        the model changed. Errors are kept in ``last_error`` and the current model keeps
        serving (a registry that is briefly unreachable is not an outage)."""
        try:
            mv = alias_version(MlflowClient(self.uri), self.name, self.alias)
            if mv is None:
                self.last_error = f"models:/{self.name}@{self.alias} does not exist yet"
                return False
            version = int(mv.version)
            if self.current is not None and self.current.version == version:
                self.last_error = None
                return False
            detected = time.time()
            mlflow.set_tracking_uri(self.uri)
            model = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
            before = self.current
            self.current = _Loaded(  # one assignment: a request sees the old or the new model
                version, model, model.metadata.get_input_schema(), time.time()
            )
            self.last_error = None
            if before is not None:
                self.switches.append(
                    {
                        "from": before.version,
                        "to": version,
                        "detected_at": detected,  # the alias was read pointing elsewhere
                        "swapped_at": self.current.loaded_at,  # the old model served until now
                    }
                )
                log.info("%s@%s: now v%d (was v%d)", self.name, self.alias, version, before.version)
            else:
                log.info("%s@%s: serving v%d", self.name, self.alias, version)
            return True
        except Exception as err:  # noqa: BLE001 - keep serving what is loaded; report it
            self.last_error = f"{type(err).__name__}: {str(err)[:300]}"
            log.warning("reading %s@%s failed: %s", self.name, self.alias, self.last_error)
            return False

    def follow(self) -> threading.Thread:
        """Refresh every ``poll_s`` seconds in a daemon thread (none when ``poll_s`` <= 0)."""

        def loop() -> None:
            while not self._stop.wait(self.poll_s):
                self.refresh()

        t = threading.Thread(target=loop, name="alias-follower", daemon=True)
        if self.poll_s > 0:
            t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    def state(self) -> dict[str, Any]:
        cur = self.current
        return {
            "name": self.name,
            "alias": self.alias,
            "version": None if cur is None else cur.version,
            "loaded_at": None if cur is None else cur.loaded_at,
            "switches": self.switches,
            "poll_s": self.poll_s,
            "last_error": self.last_error,
        }


def app(follower: AliasFollower) -> Any:
    """The FastAPI app: MLflow's scoring protocol answered by ``follower``'s current model."""
    from mlflow.pyfunc.scoring_server import invocations
    from mlflow.version import VERSION

    api = FastAPI(title=f"negsamp serve {follower.name}@{follower.alias}")

    async def ping() -> Response:
        ok = follower.current is not None
        return Response("\n", status_code=200 if ok else 503, media_type="application/json")

    api.get("/ping")(ping)
    api.get("/health")(ping)

    @api.get("/version")
    async def version() -> Response:
        return Response(VERSION, media_type="application/json")

    @api.get("/model")
    async def model() -> JSONResponse:
        return JSONResponse(follower.state())

    @api.post("/invocations")
    async def predict(request: Request) -> Response:
        loaded = follower.current  # read once: this request is answered by this version
        if loaded is None:
            why = follower.last_error or "no model loaded yet"
            return JSONResponse({"error_code": "MODEL_NOT_READY", "message": why}, 503)
        data = await request.body()
        ctype = request.headers.get("content-type", "application/json")
        result = await asyncio.to_thread(invocations, data, ctype, loaded.model, loaded.schema)
        return Response(
            result.response,
            status_code=result.status,
            media_type=result.mimetype,
            headers={"X-Model-Version": str(loaded.version)},
        )

    return api


def _ready(uri: str, name: str, alias: str, poll_s: float) -> AliasFollower:
    follower = AliasFollower(uri, name, alias, poll_s)
    follower.refresh()
    if follower.current is None:
        raise RuntimeError(
            f"cannot serve models:/{name}@{alias} from {uri}: {follower.last_error}; "
            "register a model first (`negsamp run`)"
        )
    return follower


def create_app() -> Any:
    """uvicorn's factory for worker processes: settings from :data:`ENV` (set by
    :func:`serve`); loads the alias before the first request and follows it."""
    s = json.loads(os.environ[ENV])
    follower = _ready(s["uri"], s["name"], s["alias"], float(s["poll_s"]))
    follower.follow()
    return app(follower)


def serve(
    uri: str, name: str, alias: str, host: str, port: int, workers: int = 1, poll_s: float = 10
) -> None:
    """Serve ``models:/<name>@<alias>`` from ``uri`` on ``host:port`` until stopped.

    Raises RuntimeError before binding when the alias cannot be loaded."""
    import uvicorn

    follower = _ready(uri, name, alias, poll_s)
    if workers == 1:
        follower.follow()
        uvicorn.run(app(follower), host=host, port=port, log_level="info")
        return
    os.environ[ENV] = json.dumps(
        {"uri": uri, "name": name, "alias": alias, "poll_s": poll_s}, sort_keys=True
    )
    uvicorn.run(
        "negsamp.mlops.serving:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
