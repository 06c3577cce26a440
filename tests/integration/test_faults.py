"""Killed anywhere, rerun clean (issue #14, point 7): the fault-injection harness.

``negsamp run`` runs in a subprocess with ``NEGSAMP_FAULT=<point>`` (:mod:`negsamp.faults`),
which SIGKILLs it where the point is: after each stage, with a pool written but not its
manifest, after a training epoch, inside MLflow's first schema migration, with the model
logged but not registered, with a version registered but no alias moved, and while
``dvc commit`` runs (killed too). Runs are chained in one project (each killed run starts
from what the previous kill left), then a run without a fault must complete with:

- metrics.json and the training pool byte-identical to an uninterrupted run's;
- ``dvc status`` clean (the outputs recorded in dvc.lock);
- no temporary file anywhere in the project (atomic writes, the store's build file);
- a registry whose every version has its model artifacts and a gate decision, no run left
  RUNNING by a killed process, and the champion on the last registered version.

The default suite runs one chain over two points (the MLflow migration included); the
``slow`` test runs every point.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from negsamp.io import md5_file
from negsamp.stages import ORDER
from tests.integration.conftest import BIN, make_project, run_stages, sh

NEGSAMP = str(Path(sys.executable).with_name("negsamp"))

# tiny: a run's own work is a few seconds next to the fixed cost of starting Prefect
TINY = {
    "data": {"synthetic": {"n_users": 60, "n_items": 120, "n_interactions": 900}},
    "train": {"epochs": 2, "patience": 0},
    "evaluate": {"n_eval_neg": 20, "bootstrap": 10, "ks": [1, 5, 10]},
    "registry": {"n_resamples": 100},
}

STAGES = ORDER  # every stage, in pipeline order (negsamp.stages owns the list)
# every point in pipeline order, cut into chains (each chain: one project, a clean run last)
CHAINS = {
    "data": [f"stage:{s}" for s in STAGES[:5]],
    "training": [
        "sample-negatives:pool-written",
        "stage:sample-negatives",
        "train:epoch",
        "stage:train",
        "stage:evaluate",
        "stage:report",
    ],
    "registry": [
        "mlflow:migration",
        "register:model-logged",
        "register:version",
    ],
    "recording": ["stage:register", "stage:recommend", "dvc:commit"],
}
QUICK = ["mlflow:migration", "dvc:commit"]
TEMP_MARKS = (".tmp", "-journal", "-wal", "_alembic_tmp")


def test_the_chains_kill_at_every_point_and_every_stage() -> None:
    from negsamp import faults

    chained = [p for chain in CHAINS.values() for p in chain]
    assert len(chained) == len(set(chained)) and set(QUICK) <= set(chained)
    named = {p for p in faults.POINTS if p != "stage:<name>"} | {f"stage:{s}" for s in ORDER}
    assert set(chained) == named


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An uninterrupted run's metrics.json and pool md5 (the stages in-process: the same
    functions the flow runs, so the same bytes)."""
    root = make_project(tmp_path_factory.mktemp("reference") / "proj", TINY)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        run_stages(root, "evaluate")
    finally:
        os.chdir(cwd)
    return _outputs(root)


def _outputs(root: Path) -> dict[str, str]:
    return {
        "metrics": (root / "data/metrics/default/metrics.json").read_text(),
        "pool": md5_file(root / "data/pools/default/train_pool.parquet"),
    }


def _killed_at(root: Path, point: str) -> None:
    """``negsamp run`` killed at ``point``; then what it leaves running is killed too.

    A SIGKILLed run cannot stop its children: Prefect's temporary server (and a
    ``dvc commit``) would live on. The run is the leader of its own process group, so the
    group is killed after it, as ``kill -9 -<pgid>`` would.
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root), env.get("PYTHONPATH", "")])
    env["NEGSAMP_FAULT"] = point
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [NEGSAMP, "run"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            rc = proc.wait(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        log.seek(0)
        assert rc == -signal.SIGKILL, f"NEGSAMP_FAULT={point}: exit {rc}\n{log.read()[-4000:]}"


def _temp_files(root: Path) -> list[str]:
    found = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if rel.parts[0] in (".git", ".prefect") or rel.parts[:2] == (".dvc", "tmp"):
            continue  # git's, Prefect's database (its -wal is live state) and DVC's own
        if any(m in p.name for m in TEMP_MARKS):
            found.append(str(rel))
    return found


def _check_registry(root: Path) -> None:
    """Every version has its model artifacts and a gate decision, no run is left RUNNING,
    and the champion is the last registration."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    versions = client.search_model_versions("name='negsamp'")
    assert versions
    for mv in versions:
        where = Path(urlparse(client.get_model_version_download_uri("negsamp", mv.version)).path)
        assert (where / "MLmodel").is_file(), f"v{mv.version} has no model at {where}"
        flavor = yaml.safe_load((where / "MLmodel").read_text())["flavors"]["python_function"]
        files = [flavor["python_model"], *(a["path"] for a in flavor["artifacts"].values())]
        missing = [f for f in files if not (where / f).exists()]
        assert not missing and "model" in flavor["artifacts"], (mv.version, missing)
        assert "decision" in mv.tags, f"v{mv.version} was never decided (a killed gate's)"
    exp = client.get_experiment_by_name("negsamp").experiment_id
    running = client.search_runs([exp], filter_string="attributes.status = 'RUNNING'")
    assert running == [], "a killed registration's runs are ended by the next one"
    reg = json.loads((root / "data/registry/registration.json").read_text())
    champion = client.get_registered_model("negsamp").aliases["champion"]
    assert int(champion) == reg["version"] == max(int(v.version) for v in versions)


def _run_chain(root: Path, points: list[str], reference: dict[str, str]) -> None:
    for point in points:
        _killed_at(root, point)
    res = sh(root, NEGSAMP, "run")
    assert "as champion" in res.stdout or "identical to champion" in res.stdout, res.stdout
    assert _outputs(root) == reference, f"after kills at {points}"
    status = sh(root, "dvc", "status")
    assert "up to date" in status.stdout, (points, status.stdout)
    assert _temp_files(root) == [], points
    _check_registry(root)


def test_killed_in_the_mlflow_migration_then_in_dvc_commit_reruns_clean(
    tmp_path: Path, reference: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'proj' / 'mlflow.db'}")
    root = make_project(tmp_path / "proj", TINY)
    _run_chain(root, QUICK, reference)


@pytest.mark.slow
@pytest.mark.full  # every kill point: make test-full; make test runs the quick chain above
@pytest.mark.parametrize("chain", list(CHAINS))
def test_killed_at_every_point_reruns_clean(
    chain: str, tmp_path: Path, reference: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'proj' / 'mlflow.db'}")
    root = make_project(tmp_path / "proj", TINY)
    _run_chain(root, CHAINS[chain], reference)
    shutil.rmtree(root / ".prefect", ignore_errors=True)


@pytest.mark.slow
def test_a_full_disk_while_writing_a_pool_fails_in_one_sentence_and_keeps_the_old_pool(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point 8: the disk fills up during the pool write (a double at the write call)."""
    import errno

    import polars as pl
    from typer.testing import CliRunner

    from negsamp.cli import app

    monkeypatch.chdir(project)
    run_stages(project, "sample-negatives")
    folder = project / "data/pools/default"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def full(self: pl.DataFrame, file: str | Path, **_: object) -> None:
        Path(file).write_bytes(b"PAR1" + b"\0" * 100)  # half a file, then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    res = CliRunner().invoke(
        app, ["stage", "sample-negatives", "--set", "sampler.n_neg=3"], catch_exceptions=False
    )
    assert res.exit_code == 1
    line = res.output.strip().splitlines()[-1]
    pool = folder / "train_pool.parquet"
    assert line.startswith(f"error: no space left on the device while writing {pool} (")
    assert line.endswith("the previous version is unchanged; free some space (or move the "
                         "project to a larger disk) and rerun")  # fmt: skip
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # pool and manifest


@pytest.mark.slow
def test_a_second_negsamp_run_in_the_same_project_is_refused_while_the_first_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point 8: two `negsamp run` at once; never two writers of the same outputs."""
    import time

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'proj' / 'mlflow.db'}")
    root = make_project(tmp_path / "proj", TINY)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root), env.get("PYTHONPATH", "")])
    env.pop("NEGSAMP_FAULT", None)
    lock = root / ".negsamp" / "run.lock"
    with tempfile.TemporaryFile("w+") as log:
        first = subprocess.Popen(
            [NEGSAMP, "run"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            end = time.monotonic() + 120
            while f"pid {first.pid}," not in (lock.read_text() if lock.exists() else ""):
                assert first.poll() is None and time.monotonic() < end, "never took the lock"
                time.sleep(0.05)
            second = sh(root, NEGSAMP, "run", check=False)
            rc = first.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
        log.seek(0)
        assert rc == 0, log.read()[-4000:]
    assert second.returncode == 1 and "Traceback" not in second.stderr
    msg = second.stderr.strip()
    assert msg.startswith("error: another negsamp command is writing this project's outputs")
    assert f"(pid {first.pid}, `negsamp run` since " in msg
    assert "up to date" in sh(root, "dvc", "status").stdout
    from negsamp.runlock import held

    with held(root, "run"):  # the file stays; the lock went with the first run
        pass
