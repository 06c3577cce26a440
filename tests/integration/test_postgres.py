"""The register step against a real PostgreSQL backend store (issue #8).

Starts a throwaway PostgreSQL server on 127.0.0.1 from Debian's `postgresql` package;
skipped, with the reason, where the server binaries are not installed.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import run_stages

pytestmark = pytest.mark.slow


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture
def postgres() -> Iterator[str]:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not installed (Debian package `postgresql`)")
    pytest.importorskip(
        "psycopg2", reason="psycopg2-binary is needed for MLflow's PostgreSQL store"
    )
    as_user: list[str] = []
    # pytest's tmp folders are private to root: the server needs one it can enter
    base = Path(tempfile.mkdtemp(prefix="negsamp-pg-"))
    data = base / "pg"
    data.mkdir()
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    run = functools.partial(subprocess.run, cwd=base, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True)
    opts = f"-h 127.0.0.1 -p {port} -k {data}"
    run(
        [*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(data / "log"), "-w", "start"],
        check=True,
    )
    createdb = [*as_user, _bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port)]
    try:
        run([*createdb, "-U", "postgres", "mlflow"], check=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def test_register_against_postgres_and_read_the_champion_back(
    postgres: str, trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres)
    run_stages(trained_project, "register")
    import mlflow

    client = mlflow.MlflowClient(postgres)
    mv = client.get_model_version_by_alias("negsamp", "champion")
    assert str(mv.version) == "1"
    import pandas as pd
    import polars as pl

    from negsamp.mlops.champion import load_pyfunc

    user = pl.read_parquet(trained_project / "data/interim/user_ids.parquet")["original"][0]
    recs = load_pyfunc(postgres, "negsamp").predict(pd.DataFrame({"user": [user]}), params={"k": 3})
    assert len(recs) == 3
