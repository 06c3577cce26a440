"""The sqlite MLflow store is created atomically, and a half-migrated one is explained (#14).

Before #14, a kill -9 during MLflow's first schema migration of a new ``mlflow.db`` (the
register stage on a fresh project) left ``_alembic_tmp_model_versions`` behind, and every
later run failed with ``table _alembic_tmp_model_versions already exists``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from negsamp import faults
from negsamp.mlops import store
from negsamp.mlops.errors import StoreBroken


def _python(code: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(faults.ENV, None)
    if fault:
        env[faults.ENV] = fault
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_killed_in_the_first_migration_leaves_no_store_and_the_next_open_builds_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    killed = _python(f"from negsamp.mlops import store; store.ready({uri!r})", "mlflow:migration")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not db.exists()  # only the temporary database, half-migrated
    assert any(t.startswith("_alembic_tmp_") for t in _tables(store.temporary(db)))

    assert store.ready(uri) == uri
    assert not store.temporary(db).exists() and sorted(tmp_path.iterdir()) == [db]
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    client.create_registered_model("negsamp")  # MLflow opens it without migrating again
    assert [m.name for m in client.search_registered_models()] == ["negsamp"]


def test_a_store_half_migrated_by_mlflow_itself_is_refused_with_the_repair(
    tmp_path: Path,
) -> None:
    """The failure of the issue, made the old way (MLflow migrating mlflow.db in place)."""
    db = tmp_path / "mlflow.db"
    code = f"""
from sqlalchemy import event
from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine
from negsamp import faults
engine = create_sqlalchemy_engine("sqlite:///{db}")
def crash(_c, _k, statement, *_r):
    if statement.lstrip().upper().startswith("CREATE TABLE _ALEMBIC_TMP_"):
        faults.crash()
event.listen(engine, "after_cursor_execute", crash)
_initialize_tables(engine)
"""
    assert _python(code).returncode == -signal.SIGKILL
    with pytest.raises(StoreBroken) as got:
        store.ready(f"sqlite:///{db}")
    msg = str(got.value)
    assert msg.startswith(f"the MLflow store {db} was left half-created")
    assert "(a leftover table _alembic_tmp_" in msg and msg.count(". ") == 0
    assert msg.endswith("negsamp then creates it again atomically")
    assert f"`rm {db}`" in msg
    os.remove(db)  # the repair the message names
    store.ready(f"sqlite:///{db}")
    assert "alembic_version" in _tables(db) and not any(
        t.startswith("_alembic_tmp_") for t in _tables(db)
    )


def test_a_broken_store_with_runs_is_not_deleted_but_upgraded(
    tmp_path: Path, migrated_db: Path
) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(migrated_db.read_bytes())
    with sqlite3.connect(db) as con:
        exp = con.execute("SELECT experiment_id FROM experiments").fetchone()[0]
        con.execute(
            "INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status) "
            "VALUES ('r1', ?, 'active', 'FINISHED')",
            (exp,),
        )
        con.execute("CREATE TABLE _alembic_tmp_model_versions (x INTEGER)")
    with pytest.raises(StoreBroken) as got:
        store.ready(f"sqlite:///{db}")
    msg = str(got.value)
    assert "holds 1 run(s) and 0 registered model(s)" in msg and "rm " not in msg
    assert msg.endswith(
        f"`sqlite3 {db} 'DROP TABLE _alembic_tmp_model_versions' && "
        f"mlflow db upgrade sqlite:///{db}`"
    )


def test_an_empty_file_is_built_and_other_stores_are_left_to_mlflow(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.touch()
    store.ready(f"sqlite:///{db}")
    assert "alembic_version" in _tables(db)
    for uri in ("http://127.0.0.1:5000", "sqlite:///:memory:", "postgresql://u@h/db"):
        assert store.ready(uri) == uri
    assert store.sqlite_file("sqlite:///rel/x.db") == Path("rel/x.db").resolve()
