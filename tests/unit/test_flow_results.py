"""flows.results.unchanged: when `negsamp run` prints the last recorded run instead of
running the flow (issue #17). DVC's own verdict is tested in tests/unit/test_dvcops.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows import results
from negsamp import dvcops, faults
from negsamp.paths import Paths


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(faults.ENV, raising=False)
    monkeypatch.setattr(dvcops, "up_to_date", lambda root: True)  # DVC: nothing changed
    p = Paths(tmp_path)
    p.registration.parent.mkdir(parents=True)
    store = (tmp_path / "mlflow.db").resolve()
    store.write_bytes(b"")
    p.registration.write_text(json.dumps({"tracking_uri": f"sqlite:///{store}"}))
    return p


def test_unchanged_when_dvc_finds_nothing_and_the_store_holds_the_registration(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert results.unchanged(paths)
    monkeypatch.setattr(dvcops, "up_to_date", lambda root: False)
    assert not results.unchanged(paths)


def test_a_removed_store_another_store_or_an_armed_fault_runs_the_pipeline(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    assert not results.unchanged(paths)  # register must run against the store in use
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv(faults.ENV, "dvc:commit")
    assert not results.unchanged(paths)  # a fault test's run must reach its point
    monkeypatch.delenv(faults.ENV)
    (tmp_path / "mlflow.db").unlink()
    assert not results.unchanged(paths)  # its runs and versions must be made again
    paths.registration.unlink()
    assert not results.unchanged(paths)
