"""Sharded sampling (#16): what the shards' samplers counted adds up to the one-shot counts,
and ``base.engine=ray`` without Ray installed says so in one sentence. In process, no Ray:
tests/integration/test_ray_engine.py runs the shards as Ray tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from negsamp import engine
from negsamp.cluster.runtime import ClusterError
from negsamp.cluster.sampling import add_counters, counters, grown
from negsamp.config import Config
from negsamp.interactions import Interactions
from negsamp.samplers.pool import pool_negatives, shard_ranges
from negsamp.stages import run_stage
from tests.unit.mlops import world
from tests.unit.samplers.helpers import CASES, make_sampler, wide_positives


@pytest.fixture(scope="module")
def positives() -> Interactions:
    return wide_positives()


# teacher_hard samples in the driver with the Ray engine (its teacher model stays there)
@pytest.mark.parametrize("name", [c for c in CASES if c != "teacher_hard"])
def test_shard_counts_add_up_to_the_one_shot_sampler(name: str, positives: Interactions) -> None:
    one = make_sampler(name, positives, n_neg=3)
    whole = pool_negatives(one, positives, positives, None, 3, 2, 7)
    driver = make_sampler(name, positives, n_neg=3)  # never samples: gets the shards' counts
    parts = []
    for user_range in shard_ranges(positives.n_users, 4):
        shard = make_sampler(name, positives, n_neg=3)
        before = counters(shard)
        parts.append(pool_negatives(shard, positives, positives, user_range, 3, 2, 7))
        add_counters(driver, grown(before, counters(shard)))
    for e in range(2):
        assert np.array_equal(np.concatenate([p[e] for p in parts]), whole[e])
    assert one.stats.draws > 0 and driver.stats == one.stats
    assert driver.describe() == one.describe()


def test_ray_engine_without_ray_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = world.config()
    paths = world.build(tmp_path, cfg)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    doc = cfg.model_dump()
    doc["base"]["engine"] = "ray"
    try:
        with pytest.raises(ClusterError, match=r"base\.engine=ray needs Ray.*\[cluster\]"):
            run_stage("candidates", Config.model_validate(doc), paths)
    finally:
        engine.activate(cfg)  # this process's stages run locally again
