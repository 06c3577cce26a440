"""bench/scale.py (issue #16): the --quick run end to end, as a smoke run (figures are the
bench's business, never asserted here)."""

from __future__ import annotations

import pytest
from bench import scale


def _run(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert scale.main(["--quick", *extra]) == 0
    return capsys.readouterr().out


def test_quick_run_measures_every_stage_locally(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "--ray-workers", "", "--in-process")
    for stage in ("ingest", "sample", "train (1 epoch)", "full ranking"):
        assert f"| {stage} | local |" in out, stage
    assert "Ray shards vs local: identical pools and ranks" in out


@pytest.mark.full
def test_quick_run_on_ray_gives_the_local_pool_and_ranks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("ray")
    out = _run(capsys, "--ray-workers", "1,2")
    for stage in ("sample", "full ranking"):
        assert f"| {stage} | ray x2 |" in out, stage
    assert "Ray shards vs local: identical pools and ranks" in out
