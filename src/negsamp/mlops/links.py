"""Where a run and a model version open in the MLflow UI (for Prefect artifacts, issue #15).

A tracking server (``http(s)://``) serves the UI itself: the links are absolute. A local
store (sqlite, a folder) has no UI until someone starts one: the links are the UI's own
paths, and ``open`` is the command that starts it.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient


def ui_links(uri: str, run_id: str | None, model_name: str, version: int | None) -> dict[str, Any]:
    """{run, model_version, experiment, open}: UI addresses (absolute for a server, else
    relative to ``mlflow ui``'s address) and how to open them."""
    server = uri.startswith(("http://", "https://"))
    base = uri.rstrip("/") if server else "http://127.0.0.1:5000"
    out: dict[str, Any] = {
        "open": None if server else f"mlflow ui --backend-store-uri {uri}",
        "run": None,
        "experiment": None,
        "model_version": None,
    }
    if run_id:
        experiment = MlflowClient(uri).get_run(run_id).info.experiment_id
        out["experiment"] = f"{base}/#/experiments/{experiment}"
        out["run"] = f"{base}/#/experiments/{experiment}/runs/{run_id}"
    if version is not None:
        out["model_version"] = f"{base}/#/models/{model_name}/versions/{version}"
    return out
