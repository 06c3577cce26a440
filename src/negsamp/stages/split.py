"""Stage ``split``: interactions -> train / valid / test Parquet + split.json."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from negsamp import split as splitting
from negsamp.config import Config
from negsamp.io import write_json, write_parquet
from negsamp.paths import Paths
from negsamp.stages.common import require
from negsamp.stages.spec import SHARED, StageSpec, rel, src

SPEC = StageSpec(
    name="split",
    params=("split", "base.seed"),  # base.seed: the random methods' draws
    deps=rel(SHARED.interactions, SHARED.validation_result),
    code=src("split.py", "rng.py", "stages/split.py"),
    outs=rel(SHARED.train, SHARED.valid, SHARED.test, SHARED.split_report),
)

log = logging.getLogger(__name__)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    # result.json exists only for a passing validation suite: never split unvalidated data.
    require(paths.interactions, paths.validation_result)
    s = splitting.split(pl.read_parquet(paths.interactions), cfg.split, cfg.base.seed)
    if s.test.height == 0:
        raise ValueError(
            f"{paths.interactions}: the split left no test interactions "
            f"({s.stats}); lower split.min_interactions or check the data"
        )
    splitting.check_test_users(s.stats, cfg.split.min_test_user_share, str(paths.interactions))
    write_parquet(paths.train, s.train)
    write_parquet(paths.valid, s.valid)
    write_parquet(paths.test, s.test)
    write_json(paths.split_report, s.stats)
    log.info(
        "split %s: %d train, %d valid, %d test rows; %d users kept in train only",
        s.stats["method"],
        s.stats["train_rows"],
        s.stats["valid_rows"],
        s.stats["test_rows"],
        s.stats.get("train_only_users", 0),
    )
    return s.stats
