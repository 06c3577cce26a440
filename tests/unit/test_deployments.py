"""Deployments come from params.yaml only (issue #13): prefect.yaml is generated from it,
the cron carries schedule.timezone, and serving never falls back to an ephemeral server."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

from flows import deployments
from negsamp import config

REPO = Path(__file__).resolve().parents[2]


def test_committed_prefect_yaml_is_the_generated_one() -> None:
    expected = deployments.prefect_yaml(config.load(REPO / "params.yaml"))
    assert (REPO / "prefect.yaml").read_text() == expected, (
        "prefect.yaml is stale: run `python -m flows.deployments --write-prefect-yaml prefect.yaml`"
    )


def test_prefect_yaml_follows_the_schedule_section(tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["schedule"] = {"cron": "*/5 * * * *", "timezone": "Asia/Tokyo", "work_pool": "gpu"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    doc = yaml.safe_load(deployments.prefect_yaml(config.load(tmp_path / "params.yaml")))
    check, retrain = doc["deployments"]
    assert check["schedules"] == [{"cron": "*/5 * * * *", "timezone": "Asia/Tokyo"}]
    assert "schedules" not in retrain
    for d in (check, retrain):
        assert d["work_pool"] == {"name": "gpu"}
        assert d["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}


def test_serving_without_a_server_is_an_error_not_an_ephemeral_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")  # restored afterwards
    with pytest.raises(SystemExit, match="no Prefect server"):
        deployments.connect(start_server=False)
    assert os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] == "false"


def test_an_unreachable_api_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")  # restored afterwards
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    with pytest.raises(SystemExit, match="does not answer"):
        deployments.connect(start_server=True)


def test_an_unknown_timezone_is_refused_when_params_are_parsed(tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["schedule"]["timezone"] = "Mars/Olympus"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(Exception, match="unknown timezone 'Mars/Olympus'"):
        config.load(tmp_path / "params.yaml")
