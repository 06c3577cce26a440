"""The sqlite tracking store, created atomically and checked before MLflow opens it (#14).

MLflow creates a new sqlite store by running its whole chain of schema migrations on the
file itself. SQLite runs that DDL outside any transaction, so a process killed in the
middle leaves a half-migrated ``mlflow.db`` (a leftover ``_alembic_tmp_model_versions``
table, say) that every later open refuses. :func:`ready`, called wherever negsamp opens the
store, makes that impossible for the stores it creates, and explains the ones it did not:

- no file yet (or an empty one): the schema is built in a temporary database in the same
  folder, ``.mlflow.db.init.tmp``, which is then renamed into place (one atomic rename).
  A kill leaves only that temporary file, which the next attempt deletes first; a
  directory lock (``flock``, released by the kernel on any exit) keeps two processes from
  building it at once;
- a file that a migration left half-done (an ``_alembic_tmp_*`` table, or tables without a
  schema version): :class:`~negsamp.mlops.errors.StoreBroken`, naming the file and the one
  command that repairs it.

Only sqlite files are handled: any other store (a server, PostgreSQL) is MLflow's own.
Reading an existing file costs one stdlib ``sqlite3`` query: MLflow is imported only to
build a new store.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from negsamp import faults
from negsamp.mlops.errors import StoreBroken

log = logging.getLogger(__name__)

PREFIX = "sqlite:///"
_SIDE_FILES = ("", "-journal", "-wal", "-shm")  # a sqlite database and what travels with it


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` URI; None for any other store, a URI
    with options, or an in-memory database."""
    if not uri.startswith(PREFIX) or "?" in uri:
        return None
    rest = unquote(uri[len(PREFIX) :])
    return None if rest in ("", ":memory:") else Path(rest).resolve()


def temporary(path: Path) -> Path:
    """Where a new store for ``path`` is built before the rename."""
    return path.with_name(f".{path.name}.init.tmp")


def ready(uri: str) -> str:
    """Make sure the sqlite store of ``uri`` can be opened by MLflow; returns ``uri``.

    Creates the store atomically when its file is absent or empty; raises
    :class:`StoreBroken` for a half-migrated one. Any other URI is returned untouched.
    """
    path = sqlite_file(uri)
    if path is None:
        return uri
    if not _fresh(path):
        check(path)
        return uri
    path.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(path.parent):
        if _fresh(path):  # nobody built it while this process waited for the lock
            _build(path)
    check(path)
    return uri


def _fresh(path: Path) -> bool:
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _build(path: Path) -> None:
    """Create and migrate a store at a temporary path beside ``path``, then rename it there."""
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    tmp = temporary(path)
    for suffix in _SIDE_FILES:  # what a build killed earlier left behind
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    log.info("creating the MLflow store %s (built aside, then renamed into place)", path)
    engine = create_sqlalchemy_engine(f"{PREFIX}{tmp}")
    if faults.armed("mlflow:migration"):  # a test's crash inside the migration itself
        from sqlalchemy import event

        def crash_in_batch_migration(_conn, _cursor, statement, *_rest) -> None:  # noqa: ANN001
            if statement.lstrip().upper().startswith("CREATE TABLE _ALEMBIC_TMP_"):
                faults.crash()  # the copy table of a batch migration exists: mid-migration

        event.listen(engine, "after_cursor_execute", crash_in_batch_migration)
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def check(path: Path) -> None:
    """Raise :class:`StoreBroken` when ``path`` is a store a migration left half-done."""
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return  # not ours to judge: MLflow says what is wrong with it
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
        version = None
        if "alembic_version" in tables:
            version = db.execute("SELECT version_num FROM alembic_version").fetchone()
        if not leftovers and (version is not None or not tables):
            return
        counts = {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
            for t in ("runs", "registered_models")
            if t in tables
        }
    except sqlite3.Error:
        return
    finally:
        db.close()
    raise StoreBroken(_broken_message(path, leftovers, counts))


def _broken_message(path: Path, leftovers: list[str], counts: dict[str, int]) -> str:
    what = (
        f"a leftover table {leftovers[0]}"
        if leftovers
        else "tables but no schema version (alembic_version)"
    )
    runs, models = counts.get("runs", 0), counts.get("registered_models", 0)
    if runs == 0 and models == 0:
        return (
            f"the MLflow store {path} was left half-created by an interrupted first setup "
            f"({what}) and holds no runs or models: delete it with `rm {path}` and rerun, "
            "negsamp then creates it again atomically"
        )
    repair = f"`mlflow db upgrade {PREFIX}{path}`"
    if leftovers:
        repair = f"`sqlite3 {path} 'DROP TABLE {leftovers[0]}' && mlflow db upgrade {PREFIX}{path}`"
    return (
        f"the MLflow store {path} was left half-migrated by an interrupted schema upgrade "
        f"({what}) and holds {runs} run(s) and {models} registered model(s): back the file "
        f"up, then run {repair}"
    )
