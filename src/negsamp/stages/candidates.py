"""Stage ``candidates``: the evaluation candidates, drawn once per split.

``n_eval_neg`` distinct items per test row that the user never interacted with
(train, validation or test), shared by every sampler configuration so that
comparisons are fair.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from negsamp import engine
from negsamp.config import Config
from negsamp.io import md5_file, write_json, write_parquet
from negsamp.paths import Paths
from negsamp.samplers.exact import check_capacity
from negsamp.samplers.pool import eval_candidates, pool_statistics
from negsamp.stages.common import original_users, positives, require
from negsamp.stages.spec import SHARED, StageSpec, rel, src

SPEC = StageSpec(
    name="candidates",
    params=("base.seed", "evaluate.n_eval_neg"),
    deps=rel(SHARED.train, SHARED.valid, SHARED.test, SHARED.user_ids, SHARED.item_ids),
    code=src("samplers", "interactions.py", "rng.py", "stages/candidates.py"),
    outs=rel(SHARED.eval_candidates, SHARED.eval_candidates_manifest),
)

log = logging.getLogger(__name__)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    require(paths.train, paths.valid, paths.test)
    known = positives(paths, paths.train, paths.valid, paths.test)
    test = pl.read_parquet(paths.test, columns=["user", "item"])
    check_capacity(  # before drawing: name the setting and the file's user id
        known,
        test["user"].to_numpy(),
        cfg.evaluate.n_eval_neg,
        replace=False,
        what="evaluation candidates",
        setting="evaluate.n_eval_neg",
        original=original_users(paths),
        fix="remove the users who have interacted with (almost) every item",
    )
    eng = engine.current()
    if eng.is_ray:  # user ranges as Ray tasks: the same rows
        from negsamp.cluster import sampling

        cands, shards = sampling.candidates(
            eng.ray, known, test, cfg.evaluate.n_eval_neg, cfg.base.seed
        )
        where = engine.lineage(shards)
    else:
        cands = eval_candidates(known, test, cfg.evaluate.n_eval_neg, cfg.base.seed)
        where = engine.lineage()
    write_parquet(paths.eval_candidates, cands)
    negs = cands["candidates"].to_numpy()
    train = positives(paths, paths.train)
    manifest = {
        "kind": "eval_candidates",
        "sampler": {"name": "uniform", "replace": False, "exclude": "train+valid+test"},
        "seed": cfg.base.seed,
        "n_eval_neg": cfg.evaluate.n_eval_neg,
        "rows": cands.height,
        "users": int(test["user"].n_unique()),
        "content_md5": md5_file(paths.eval_candidates),
        "engine": where,  # where it was drawn: never part of the bytes above
        "data_md5": {
            "train": md5_file(paths.train),
            "valid": md5_file(paths.valid),
            "test": md5_file(paths.test),
        },
        "rejected_fraction": 0.0,
        "statistics": pool_statistics(negs, train),
    }
    write_json(paths.eval_candidates_manifest, manifest)
    log.info("evaluation candidates: %d rows x %d", cands.height, cfg.evaluate.n_eval_neg)
    return manifest
