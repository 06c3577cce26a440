"""Prefect artifacts of a flow run (issue #15): what the Artifacts tab shows.

Every pipeline, retrain and sweep run publishes a Markdown report (the gate's decision, links
to the MLflow run and model version, the comparison with CIs, the batch recommendations) and
the comparison as a table; every drift check publishes its signals and decision. The text
comes from :mod:`negsamp.summary`; this module only hands it to Prefect.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from negsamp import summary

log = logging.getLogger("negsamp.flows")


def _links(reg: dict[str, Any]) -> dict[str, Any]:
    from negsamp.mlops.links import ui_links

    try:
        return ui_links(
            reg["tracking_uri"], reg.get("run_id"), reg["model_name"], reg.get("version")
        )
    except Exception as err:  # noqa: BLE001 - the report goes out without links, and says why
        log.warning("no MLflow links in the run's artifact: %s", err)
        return {"open": None, "run": None, "model_version": None}


def publish_run(result: dict[str, Any], title: str) -> None:
    """A Markdown report and a comparison table for the current flow run."""
    reg = result["registration"]
    create_markdown_artifact(
        key="negsamp-run",
        markdown=summary.markdown(result, _links(reg), title),
        description=f"{reg['model_name']} v{reg['version']}: {reg.get('alias')}",
    )
    create_table_artifact(
        key="negsamp-comparison",
        table=summary.table(result["comparison"]),
        description=f"test metrics of every configuration; chosen on validation "
        f"{result['comparison']['monitor']}",
    )


def publish_drift(out: dict[str, Any]) -> None:
    """The drift check's signals and what it decided."""
    create_markdown_artifact(
        key="negsamp-drift-check",
        markdown=summary.drift_markdown(out),
        description=out["drift"]["summary"],
    )
