"""The champion gate against a real `mlflow server` on 127.0.0.1 that dies mid-gate (issue #12).

A champion is registered through the real register stage; a second, clearly better model
goes through the gate and the server is killed (SIGKILL, its whole process group) while the
champion is being re-evaluated. The registration must fail with one sentence naming the
server and saying the registry was not changed; restarted on the same store, the server
still has the champion alias on v1 and no second version. MLflow's retries are kept short
through its own settings, so the test does not wait minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from negsamp.io import read_json
from negsamp.mlops.errors import TrackingUnavailable
from tests.integration.browser import mlflow_server_process
from tests.unit.mlops import world

pytestmark = pytest.mark.slow

METRIC = "sampled_ndcg_10"


@contextmanager
def mlflow_server(db: Path, artifacts: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``mlflow server`` on a free port of 127.0.0.1 over the sqlite store ``db``."""
    with mlflow_server_process(f"sqlite:///{db}", artifacts) as served:
        yield served


def _kill(proc: subprocess.Popen) -> None:
    """A crash, not a shutdown: SIGKILL to the server and its uvicorn worker."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_server_killed_mid_gate_fails_the_run_and_leaves_the_registry_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from negsamp.stages import register

    for key, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
    ):
        monkeypatch.setenv(key, value)
    db, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    cfg = world.config()
    paths = world.build(tmp_path / "project", cfg)
    monkeypatch.chdir(paths.root)

    with mlflow_server(db, artifacts) as (url, proc):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        first = register.run(cfg, paths)  # a fresh server: "no such registered model"
        assert (first["version"], first["alias"], first["reason"]) == (
            1,
            "champion",
            "no champion yet",
        )
        champ = world.per_user(paths, METRIC)  # a challenger the gate would promote
        better = champ.with_columns(pl.col(METRIC) + 0.3)
        world.set_challenger(paths, METRIC, better, float(better[METRIC].mean()))
        real, seen = register.reevaluate_champion, []

        def reevaluate_then_crash(*args: Any) -> Any:
            out = real(*args)
            seen.append(out)
            _kill(proc)
            return out

        monkeypatch.setattr(register, "reevaluate_champion", reevaluate_then_crash)
        start = time.monotonic()
        with pytest.raises(TrackingUnavailable) as got:
            register.run(cfg, paths)
        assert time.monotonic() - start < 60 and len(seen) == 1
        msg = str(got.value)
        assert msg.startswith(f"MLflow at {url} did not answer (connection refused)")
        assert msg.endswith("the model registry was not changed.") and msg.count(". ") == 0

        monkeypatch.undo()  # still down: the champion read itself fails, never "no champion"
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.chdir(paths.root)
        with pytest.raises(TrackingUnavailable, match="the model registry was not changed"):
            register.run(cfg, paths)
    assert read_json(paths.registration)["version"] == 1  # the record of the last success

    with mlflow_server(db, artifacts) as (url, _):
        client = MlflowClient(url)
        model = client.get_registered_model("negsamp")
        assert {a: int(v) for a, v in model.aliases.items()} == {"champion": 1}
        assert [int(v.version) for v in client.search_model_versions("name='negsamp'")] == [1]
        exp = client.get_experiment_by_name("negsamp").experiment_id
        assert [r.info.run_id for r in client.search_runs([exp])] == [first["run_id"]]


@pytest.mark.parametrize("step", ["log_pyfunc", "register_version"])
def test_a_server_killed_while_the_registry_is_written_leaves_the_champion_alias_alone(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #14, point 8: the server stops mid-register, past the gate's decision: while the
    model is logged (no version yet), or just after the new version is registered (its
    removal fails too). One sentence says what is left; `champion` never moves."""
    from mlflow import MlflowClient

    from negsamp.mlops import gate
    from negsamp.stages import register

    for key, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "5"),
    ):
        monkeypatch.setenv(key, value)
    db, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    cfg = world.config()
    paths = world.build(tmp_path / "project", cfg)
    monkeypatch.chdir(paths.root)
    with mlflow_server(db, artifacts) as (url, proc):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        assert register.run(cfg, paths)["version"] == 1
        champ = world.per_user(paths, METRIC)
        better = champ.with_columns(pl.col(METRIC) + 0.3)
        world.set_challenger(paths, METRIC, better, float(better[METRIC].mean()))
        real = getattr(gate, step)

        def then_crash(*args: Any, **kwargs: Any) -> Any:
            out = real(*args, **kwargs)
            _kill(proc)
            return out

        monkeypatch.setattr(gate, step, then_crash)
        start = time.monotonic()
        with pytest.raises(TrackingUnavailable) as got:
            register.run(cfg, paths)
        assert time.monotonic() - start < 90
    msg = str(got.value)
    assert msg.startswith(f"MLflow at {url} did not answer (") and msg.count(". ") == 0
    left = (
        "the model registry was not changed."
        if step == "log_pyfunc"
        else "negsamp v2, registered before the failure, remains: delete it by hand."
    )
    assert msg.endswith(f"so the registration failed and {left}")
    assert read_json(paths.registration)["version"] == 1

    with mlflow_server(db, artifacts) as (url, _):
        client = MlflowClient(url)
        aliases = client.get_registered_model("negsamp").aliases
        assert {a: int(v) for a, v in aliases.items()} == {"champion": 1}
        found = sorted(int(v.version) for v in client.search_model_versions("name='negsamp'"))
        assert found == ([1] if step == "log_pyfunc" else [1, 2])
