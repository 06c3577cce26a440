"""#14 points 4 and 6 through the Prefect flow: ``negsamp run`` on bad input prints one
``error: ...`` (no traceback, no retry, no UnfinishedRun) and writes nothing downstream, not
even data/raw/synthetic.parquet when the source is a CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import sh

ROWS = [
    f"u{u},i{(u + j) % 10},4,{1_600_000_000 + 3600 * (5 * u + j)}"
    for u in range(8)
    for j in range(5)
]


def _csv(root: Path, rows: list[str]) -> None:
    (root / "log.csv").write_text("\n".join(["user,item,rating,timestamp", *rows]) + "\n")


def _run(root: Path, *sets: str):  # noqa: ANN202
    args = [
        "negsamp",
        "run",
        "--no-record",
        "--set",
        "data.source=csv",
        "--set",
        "data.path=log.csv",
    ]
    for s in sets:
        args += ["--set", s]
    return sh(
        root, *args, check=False, env={"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    )


def _quiet(out: str) -> None:
    for noise in ("Traceback", "Retry 1/1", "UnfinishedRun", "NotReady", "ERROR"):
        assert noise not in out, f"{noise!r} in:\n{out}"


def test_run_on_a_nan_rating_fails_once_without_traceback_or_synthetic_data(project: Path) -> None:
    rows = list(ROWS)
    rows[6] = "u1,i9,nan,1600000000"
    _csv(project, rows)
    res = _run(project)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "error: " in res.stderr and "line 8: rating 'nan' is not a finite number" in res.stderr
    assert out.count("is not a finite number") == 1  # printed once, by the CLI
    _quiet(out)
    assert not (project / "data/raw/synthetic.parquet").exists()
    assert not (project / "data/interim").exists()


@pytest.mark.slow
def test_run_with_n_neg_above_the_catalog_stops_before_training(project: Path) -> None:
    _csv(project, ROWS)
    res = _run(project, "sampler.n_neg=11", "evaluate.n_eval_neg=3")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "error: sampler.n_neg=11 is more than the catalog's 10 items" in res.stderr
    _quiet(out)
    assert not list((project / "data").rglob("pool.parquet"))
    assert not (project / "data/models").exists() or not list(
        (project / "data/models").rglob("*.pt")
    )
    assert not (project / "data/raw/synthetic.parquet").exists()
