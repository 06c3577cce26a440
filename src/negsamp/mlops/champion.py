"""The champion: the model version that holds the ``champion`` alias, read once.

:func:`read` asks the registry for the alias exactly once and loads everything else by
version (``models:/<name>/<version>``), so a registration that moves the alias meanwhile
cannot hand a caller the run of one version and the model of another.

What the answers mean:

- ``None``: the registry said the alias (or the registered model) does not exist, and
  only that answer: any other MLflow error is raised, never read as "no champion".
- a :class:`Champion` with ``problem`` set: the alias exists but its run is gone or its
  model cannot be loaded (deleted run or artifacts). The gate never promotes over it.
- a network failure (server down, 5xx after MLflow's retries) is raised as it came;
  :func:`negsamp.mlops.errors.is_transient` recognises it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import polars as pl
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from negsamp.mlops import store
from negsamp.mlops.errors import is_transient

log = logging.getLogger(__name__)

CHAMPION = "champion"


@dataclass(frozen=True)
class Champion:
    """One model version as read through its alias.

    run: its MLflow run (tags such as ``data_snapshot``, logged metrics), None if gone.
    model: the torch model (the :mod:`negsamp.models` interface), None if not loadable.
        For a refit version (issue #13) the held-out model it won with, not the refit it
        serves: the refit trained on the test items a re-evaluation would rank.
    users / items: its id maps as frames of (dense Int64, raw), None with the model.
    problem: why the run or the model is unusable; None when both were read.
    """

    name: str
    version: int
    run_id: str
    run: Run | None
    model: Any | None
    users: pl.DataFrame | None
    items: pl.DataFrame | None
    problem: str | None = None


def _code(name: int) -> str:
    return ErrorCode.Name(name)


def _absent(err: MlflowException, alias: str) -> bool:
    """The registry's own answer for "no such alias" or "no such registered model"."""
    msg = str(err.message)
    if err.error_code == _code(RESOURCE_DOES_NOT_EXIST):
        return "Registered Model with name=" in msg and "not found" in msg
    return err.error_code == _code(INVALID_PARAMETER_VALUE) and f"alias {alias} not found" in msg


def alias_version(client: MlflowClient, name: str, alias: str) -> Any | None:
    """The ModelVersion holding ``alias``; None only when the registry says there is none."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if _absent(err, alias):
            return None
        raise


def _problem(what: str, err: Exception) -> str:
    if is_transient(err):
        raise err
    text = err.message if isinstance(err, MlflowException) else str(err)
    return f"{what} ({type(err).__name__}: {text.strip()[:300]})"


def _run(client: MlflowClient, run_id: str) -> tuple[Run | None, str | None]:
    if not run_id:
        return None, "it has no MLflow run"
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        return None, _problem(f"its run {run_id} cannot be read", err)
    if run.info.lifecycle_stage != "active":
        return run, f"its run {run_id} is deleted"
    return run, None


def _wrapper(uri: str, name: str, version: int) -> tuple[Any, pl.DataFrame]:
    mlflow.set_tracking_uri(uri)
    wrapper = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()
    raw = wrapper._raw_items
    return wrapper, pl.DataFrame({"dense": np.arange(raw.size), "raw": raw})


def served(uri: str, name: str, version: int) -> tuple[Any, pl.DataFrame, pl.DataFrame, bool]:
    """(model, users, items, refit) that version ``version`` serves: its refit when it was
    refit (``refit`` True); id maps as frames of (dense Int64, raw). For batch
    recommendations (issue #13)."""
    wrapper, items = _wrapper(uri, name, version)
    return wrapper._model, wrapper._users, items, bool(getattr(wrapper, "_heldout_dir", None))


def _model(uri: str, name: str, version: int) -> tuple[Any, pl.DataFrame, pl.DataFrame]:
    wrapper, items = _wrapper(uri, name, version)
    heldout = getattr(wrapper, "_heldout_dir", None)  # versions logged before #13 have none
    if heldout:  # a refit serves: the gate re-evaluates the model that never saw the test
        from negsamp.models import load_model

        return load_model(heldout, device="cpu"), wrapper._users, items
    return wrapper._model, wrapper._users, items


def read(uri: str, name: str, alias: str = CHAMPION, load_model: bool = True) -> Champion | None:
    """The version holding ``alias`` in ``uri``'s registry, with its run and (if asked) model.

    Reads the alias once. Raises what MLflow raised for anything but "no such alias".
    """
    client = MlflowClient(store.ready(uri))
    mv = alias_version(client, name, alias)
    if mv is None:
        return None
    version = int(mv.version)
    run, problem = _run(client, mv.run_id or "")
    model = users = items = None
    if load_model:
        try:
            model, users, items = _model(uri, name, version)
        except Exception as err:  # noqa: BLE001 - any failure to load is the model's problem
            problem = problem or _problem(f"its model cannot be loaded from {uri}", err)
    if problem:
        log.warning("%s v%d (%s): %s", name, version, alias, problem)
    return Champion(name, version, mv.run_id or "", run, model, users, items, problem)


def load_pyfunc(uri: str, name: str, alias: str = CHAMPION) -> Any:
    """The pyfunc behind ``models:/<name>@<alias>`` in ``uri``'s registry (for serving code)."""
    mlflow.set_tracking_uri(store.ready(uri))
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
