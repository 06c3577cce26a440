"""Issue #14 (points 4-6): broken inputs are refused by the first stage that can tell, in one
message naming the line / column / key, with no traceback and nothing written downstream;
files that only look odd (BOM, CRLF, quotes, float-looking or padded ids, extra columns) are
read as they are meant.

Every case runs the real CLI in-process (``negsamp stage <name>`` through typer's
CliRunner) in a fresh project folder: the stages before the refusing one must pass, the
refusing one must exit 1 with ``error: ...`` and leave the files under data/ exactly as
they were (a validation failure may add only its own failed.json report).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from negsamp.cli import app
from negsamp.config import write_overrides
from negsamp.io import read_json

REPO = Path(__file__).resolve().parents[3]
HEADER = "user,item,rating,timestamp"
T0 = 1_600_000_000


def good_rows(n_users: int = 8, n_items: int = 10, per_user: int = 5) -> list[str]:
    """User uK has items i(K..K+per_user) mod n_items, rated 4, one day apart."""
    return [
        f"u{u},i{(u + j) % n_items},4,{T0 + 86_400 * (u * per_user + j)}"
        for u in range(n_users)
        for j in range(per_user)
    ]


def csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD = csv(*good_rows())


@dataclass(frozen=True)
class Case:
    """A file (text, or a writer of ``path``), the settings, and the refusal expected."""

    content: str | Callable[[Path], None]
    stage: str  # the stage that must refuse
    expect: tuple[str, ...]  # substrings the message must hold (line, column, key, ids)
    sets: tuple[str, ...] = ()
    file: str = "log.csv"
    source: str = "csv"
    cli_sets: tuple[str, ...] = field(default=())  # --set on the refusing command itself


def _parquet(df: pl.DataFrame) -> Callable[[Path], None]:
    return lambda path: df.write_parquet(path)


def _folder(path: Path) -> None:
    path.mkdir()


NAN_PARQUET = pl.DataFrame(
    {"user": [1, 2], "item": [3, 4], "rating": [4.0, float("nan")], "timestamp": [T0, T0]}
)
HEAVY = csv(*good_rows(), *(f"heavy,i{i},4,{T0 + i}" for i in range(10)))

BAD: dict[str, Case] = {
    # ---- ingest: the file's structure
    "empty file": Case("", "ingest", ("log.csv is empty (0 bytes)", "data.path")),
    "header only": Case(csv(), "ingest", ("log.csv has no data rows",)),
    "missing rating column": Case(
        "user,item,score,timestamp\n1,2,3,4\n",
        "ingest",
        ("no column 'rating'", "data.columns.rating"),
    ),
    "missing item column (mapped)": Case(
        GOOD, "ingest", ("no column 'product'", "data.columns.item"), ("data.columns.item=product",)
    ),
    "tsv read as csv": Case(GOOD.replace(",", "\t"), "ingest", ("no column 'user'", "data.source")),
    "two fields on one column": Case(
        GOOD, "ingest", ("data.columns maps two fields",), ("data.columns.item=user",)
    ),
    "short row": Case(
        csv(*good_rows()[:3], "3,7"), "ingest", ("line 5 '3,7' has 2 field(s)", "header's 4")
    ),
    "short row, CRLF line ends": Case(
        csv("u1,i1,4,100", "3,7").replace("\n", "\r\n"), "ingest", ("line 3 '3,7' has 2 field(s)",)
    ),
    "short row in a tsv": Case(
        csv("u1\ti1\t4\t100", "u2\ti2", header=HEADER.replace(",", "\t")),
        "ingest",
        ("line 3 'u2\\ti2' has 2 field(s)",),
        source="tsv",
        file="log.tsv",
    ),
    "long row": Case(
        csv("u1,i1,4,100", "u1,i2,4,100,9"), "ingest", ("line 3 'u1,i2,4,100,9' has 5 field(s)",)
    ),
    "duplicate header line": Case(
        csv(*good_rows()[:2], HEADER, *good_rows()[2:4]),
        "ingest",
        ("line 4 repeats the header line", "delete the repeated header"),
    ),
    "missing file": Case(
        GOOD, "ingest", ("nowhere.csv: file not found", "data.path"), ("data.path=nowhere.csv",)
    ),
    "path is a folder": Case(_folder, "ingest", ("is a folder", "data.path"), file="logs"),
    # ---- ingest: the values
    "empty item": Case(
        csv("u1,i1,4,100", "u1,,4,100"), "ingest", ("line 3: item is empty", "user 'u1'")
    ),
    "empty user": Case(
        csv(",i1,4,100", "u1,i2,4,100"), "ingest", ("line 2: user is empty", "item 'i1'")
    ),
    "blank user after trimming": Case(
        csv("u1,i1,4,100", "   ,i2,4,100"), "ingest", ("line 3: user is empty ('   ')", "item 'i2'")
    ),
    "quoted empty item": Case(
        csv('u1,"  ",4,100', "u1,i2,4,100"), "ingest", ("line 2: item is empty",)
    ),
    "nan rating": Case(
        csv("u1,i1,4,100", "u2,i9,nan,100"),
        "ingest",
        ("line 3: rating 'nan' is not a finite number", "user 'u2'", "item 'i9'"),
    ),
    "inf rating": Case(csv("u1,i1,inf,100"), "ingest", ("line 2: rating 'inf' is not a finite",)),
    "-inf rating": Case(csv("u1,i1,4,1", "u1,i2,-inf,1"), "ingest", ("line 3: rating '-inf'",)),
    "text rating": Case(csv("u1,i1,five,100"), "ingest", ("line 2: rating 'five' does not parse",)),
    "fractional id": Case(
        csv("1,2,4,100", "1.5,3,4,100"), "ingest", ("line 3: user 1.5 does not parse", "item 3")
    ),
    "nan rating in parquet": Case(
        _parquet(NAN_PARQUET),
        "ingest",
        ("row 1: rating", "not a finite number"),
        source="parquet",
        file="log.parquet",
    ),
    "not a parquet file": Case(GOOD, "ingest", ("not a readable Parquet file",), source="parquet"),
    "movielens-100k short line": Case(
        "1\t10\t5\t881250949\n2\t10\t3\n",
        "ingest",
        ("line 2", "has 3 field(s), expected 4"),
        source="movielens-100k",
        file="u.data",
    ),
    "movielens-1m bad id": Case(
        "1::10::5::978300760\nx::10::3::978300760\n",
        "ingest",
        ("line 2: user 'x' does not parse",),
        source="movielens-1m",
        file="ratings.dat",
    ),
    "threshold removes every row": Case(
        GOOD,
        "ingest",
        ("data.rating_threshold=5.0", "lower the threshold"),
        ("data.rating_threshold=5",),
    ),
    "threshold without ratings": Case(
        GOOD,
        "ingest",
        ("data.rating_threshold=3.0", "no ratings"),
        ("data.rating_threshold=3", "data.columns.rating=null"),
    ),
    # ---- configuration: wrong override keys and values, refused before any stage runs
    "unknown key": Case(GOOD, "ingest", ("sampler.nneg",), cli_sets=("sampler.nneg=3",)),
    "bad value type": Case(
        GOOD, "ingest", ("evaluate.n_eval_neg",), cli_sets=("evaluate.n_eval_neg=abc",)
    ),
    "unknown source": Case(GOOD, "ingest", ("data.source",), cli_sets=("data.source=excel",)),
    # ---- validation
    "too little history per user": Case(
        csv(*good_rows(per_user=2)),
        "validate",
        ("split.min_interactions", "8 bad users", "user=u0, n_interactions=2"),
    ),
    # ---- settings that do not fit the data (caught before training)
    "a user who has seen every item": Case(
        HEAVY, "candidates", ("user 'heavy'", "0 of 10 items left", "every item")
    ),
    "n_eval_neg above what a user has left": Case(
        GOOD,
        "candidates",
        ("evaluate.n_eval_neg=6", "user 'u0'", "5 of 10", "at most 5"),
        ("evaluate.n_eval_neg=6",),
    ),
    "n_neg above the catalog": Case(
        GOOD,
        "sample-negatives",
        ("sampler.n_neg=11", "catalog's 10 items", "at most 10"),
        ("sampler.n_neg=11",),
    ),
    "n_neg without replacement above what a user has left": Case(
        GOOD,
        "sample-negatives",
        ("sampler.n_neg=8", "user 'u0'", "7 of 10", "at most 7", "sampler.replace=true"),
        ("sampler.n_neg=8", "sampler.replace=false"),
    ),
    "hard candidates above the catalog": Case(
        GOOD,
        "sample-negatives",
        ("sampler.hard.candidates=12", "catalog's 10 items"),
        ("sampler.name=hard", "sampler.hard.candidates=12"),
    ),
    "mixed pool without replacement wider than what a user has left": Case(
        GOOD,
        "sample-negatives",
        ("pool width (sampler.mixed.candidates", "=8 but user 'u0'", "7 of 10", "at most 7"),
        (
            "sampler.name=mixed",
            "sampler.n_neg=4",
            "sampler.mixed.candidates=6",
            "sampler.replace=false",
        ),
    ),
}

BASE_SETS = (
    "data.source=csv",
    "data.path=log.csv",
    "evaluate.n_eval_neg=3",
    "sampler.n_neg=2",
    "sampler.pool_epochs=1",
)


def _project(tmp_path: Path, case: Case) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    target = root / case.file
    if callable(case.content):
        case.content(target)
    else:
        target.write_bytes(case.content.encode("utf-8"))
    sets = [*BASE_SETS, f"data.source={case.source}", f"data.path={case.file}", *case.sets]
    write_overrides(root / "params.yaml", sets)
    return root


def _stage(root: Path, name: str, *sets: str):  # noqa: ANN202 - click's Result
    args = ["stage", name, "--params", str(root / "params.yaml")]
    for s in sets:
        args += ["--set", s]
    return CliRunner().invoke(app, args)


def _files(root: Path) -> set[str]:
    data = root / "data"
    return (
        {str(p.relative_to(root)) for p in data.rglob("*") if p.is_file()}
        if data.exists()
        else set()
    )


ORDER = ("ingest", "validate", "split", "candidates", "sample-negatives")


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_refused_in_one_message_with_nothing_written_downstream(
    tmp_path: Path, name: str
) -> None:
    case = BAD[name]
    root = _project(tmp_path, case)
    for before in ORDER[: ORDER.index(case.stage)]:
        ok = _stage(root, before)
        assert ok.exit_code == 0, f"{before} should pass before {case.stage}: {ok.output}"
    written = _files(root)
    res = _stage(root, case.stage, *case.cli_sets)
    out = res.output
    assert res.exit_code == 1, out
    assert isinstance(res.exception, SystemExit), res.exception  # no exception escaped
    assert "error: " in out and "Traceback" not in out
    for part in case.expect:
        assert part in out, f"{part!r} not in {out!r}"
    after = _files(root) - {"data/validation/failed.json"}
    assert after == written, f"written downstream of {case.stage}: {sorted(after - written)}"
    assert not (root / "data/raw/synthetic.parquet").exists()


def test_at_least_thirty_refusals() -> None:
    assert len(BAD) >= 30


@dataclass(frozen=True)
class Accepted:
    text: str
    users: list[object]  # the originals of user ids 0.. (sorted by first batch, then id)
    items: list[object]
    n_interactions: int
    sets: tuple[str, ...] = ()


GOOD_ACCEPTED = {
    "utf-8 BOM and CRLF line ends": Accepted(
        "\ufeff" + GOOD.replace("\n", "\r\n"),
        [f"u{u}" for u in range(8)],
        [f"i{i}" for i in range(10)],
        40,
    ),
    "quoted fields, a separator inside quotes": Accepted(
        csv('"u1","i,1",4,100', '"u1","i ""2""",4,101', 'u2,"i,1",4,102'),
        ["u1", "u2"],
        ['i "2"', "i,1"],
        3,
    ),
    "float-looking ids": Accepted(
        csv("1.0,10.0,4,100", "2.0,10.0,4,100", "1,11,4,100"), [1, 2], [10, 11], 3
    ),
    "string ids padded with blanks": Accepted(
        csv(" a ,x,4,100", "a,x,5,101", "b, y,4,102"), ["a", "b"], ["x", "y"], 2
    ),
    "extra columns and another order": Accepted(
        "timestamp,note,item,user,rating,genre\n100,hi,7,1,4,pop\n101,,8,1,3,rock\n102,x,7,2,5,\n",
        [1, 2],
        [7, 8],
        3,
    ),
    "a quoted free-text column spanning lines": Accepted(
        'user,item,rating,timestamp,review\n1,2,4,100,"great\nfilm, really"\n1,3,5,101,ok\n',
        [1],
        [2, 3],
        2,
    ),
    "blank lines": Accepted(csv("u1,i1,4,100", "", "u2,i1,4,101", "   "), ["u1", "u2"], ["i1"], 2),
}


@pytest.mark.parametrize("name", list(GOOD_ACCEPTED))
def test_odd_but_valid_files_are_read_as_meant(tmp_path: Path, name: str) -> None:
    case = GOOD_ACCEPTED[name]
    root = _project(tmp_path, Case(case.text, "ingest", (), case.sets))
    res = _stage(root, "ingest")
    assert res.exit_code == 0, res.output
    report = read_json(root / "data/interim/ingest.json")
    users = pl.read_parquet(root / "data/interim/user_ids.parquet").sort("user")["original"]
    items = pl.read_parquet(root / "data/interim/item_ids.parquet").sort("item")["original"]
    assert users.to_list() == case.users
    assert items.to_list() == case.items
    assert report["n_interactions"] == case.n_interactions
    ts = pl.read_parquet(root / "data/interim/interactions.parquet")["timestamp"]
    assert ts.min() >= 100 and np.isfinite(ts.to_numpy()).all()
