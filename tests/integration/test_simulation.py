"""`negsamp simulate`: days of production against a real Prefect server and `negsamp serve`
(issue #13, point 6), run as a user runs it: the command, in a project, on 127.0.0.1.

The shortened run (4 days: quiet, shift, broken export, catalog change) is in `make test`;
the 30-day run is `make simulate` (its report is in the issue's closing note).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from negsamp import config
from tests.integration.conftest import make_project

pytestmark = pytest.mark.slow


def _status(root: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
    ).stdout


def test_four_days_ingest_every_valid_batch_once_refuse_the_broken_one_and_serve_throughout(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "proj")
    params_before, status_before = (root / "params.yaml").read_bytes(), _status(root)
    negsamp = str(Path(sys.executable).with_name("negsamp"))
    proc = subprocess.run(
        [negsamp, "simulate", "--days", "4", "--rows-per-day", "400", "--request-every", "0.25"],
        cwd=root, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    ws = root / ".negsamp" / "simulation"
    report_file = ws / "report" / "simulation.json"
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    report = json.loads(report_file.read_text())
    days, s = report["days"], report["summary"]
    print((ws / "report" / "simulation.md").read_text())

    assert [d["kind"] for d in days] == ["quiet", "shift", "broken", "catalog"]
    assert report["problems"] == []
    # every valid batch ingested exactly once; the broken export refused, nothing written
    valid = [d for d in days if d["kind"] != "broken"]
    assert all(d["ingest"] == "ingested" for d in valid)
    [broken] = [d for d in days if d["kind"] == "broken"]
    assert broken["ingest"].startswith("rejected: incoming/day-03.parquet")
    assert "item is empty" in broken["ingest"]  # the loader names the rows that lost it
    appends = config.load(ws / "params.yaml").data.appends
    assert [a.md5 for a in appends] == [d["md5"] for d in valid]
    assert sorted(p.name for p in (ws / "data/raw/appends").glob("*.parquet")) == [
        f"{i:04d}.parquet" for i in range(1, len(valid) + 1)
    ]
    # the catalog change retrains; nothing worse than the champion is ever promoted
    assert days[-1]["retrained"] and "cold_item_share" in days[-1]["signals"]
    for d in days:
        if d["promoted"] and d["champion_value_before"] is not None:
            assert d["challenger_value"] >= d["champion_value_before"], d
    promoted = [d["champion"] for d in days if d["promoted"]]
    # serving answered every request, through every switch, and ends on the champion
    assert s["requests"] >= 4 * 10 and s["errors"] == 0 and all(d["requests"] for d in days)
    assert len(report["switches"]) == len(promoted)
    assert all(w["errors"] == 0 and w["requests"] > 0 for w in report["switches"])
    assert report["served_now"] == days[-1]["champion"]
    if promoted:
        assert promoted[-1] in days[-1]["served_versions"]
    # the project itself is exactly as it was
    assert (root / "params.yaml").read_bytes() == params_before
    assert _status(root) == status_before
