"""Write a drift report's files: the package's only file IO."""

from __future__ import annotations

import logging
from pathlib import Path

from negsamp.drift.report import DriftReport
from negsamp.io import atomic_write

log = logging.getLogger(__name__)


def write_report(report: DriftReport, folder: str | Path) -> dict[str, Path]:
    """Write drift_report.{json,md,html} and one PNG per plot into ``folder``, atomically."""
    folder = Path(folder)
    plots = report.plots()
    paths = {
        "json": folder / "drift_report.json",
        "markdown": folder / "drift_report.md",
        "html": folder / "drift_report.html",
    }
    atomic_write(paths["json"], report.to_json().encode())
    atomic_write(paths["markdown"], report.to_markdown().encode())
    atomic_write(paths["html"], report.to_html(plots).encode())
    for name, png in plots.items():
        paths[name] = folder / f"{name}.png"
        atomic_write(paths[name], png)
    log.info("drift report in %s: %s", folder, report.fired or "no signal fired")
    return paths
