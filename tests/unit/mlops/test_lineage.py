"""#14: the lineage records how ingest read the timestamps and which weight column it used."""

from __future__ import annotations

from pathlib import Path

from negsamp.io import write_json
from negsamp.mlops.lineage import ingest_tags
from negsamp.paths import Paths


def test_ingest_tags_record_timestamp_format_and_weight(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path)
    assert ingest_tags(paths) == {}
    write_json(
        paths.ingest_report,
        {
            "timestamp_format": "auto",
            "timestamp_parsed_as": "unix_ms",
            "weight": {"column": "plays"},
        },
    )
    assert ingest_tags(paths) == {
        "timestamp_format": "auto",
        "timestamp_parsed_as": "unix_ms",
        "weight_column": "plays",
    }
    write_json(paths.ingest_report, {"timestamp_format": "auto", "timestamp_parsed_as": None})
    assert ingest_tags(paths)["timestamp_parsed_as"] == "none"
    assert ingest_tags(paths)["weight_column"] == "none"
