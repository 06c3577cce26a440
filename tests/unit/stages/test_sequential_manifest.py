"""Issue #19: a sequential model's sample-negatives writes no pool but a manifest that
keeps the lineage: the sampler's configuration, the seed and its draw's statistics."""

from __future__ import annotations

import polars as pl

from negsamp.config import Config, SASRecCfg, UniformSamplerCfg
from negsamp.io import read_json
from negsamp.stages import sample_negatives
from tests.unit.mlops import world


def test_sasrec_records_its_sampler_instead_of_a_pool(tmp_path) -> None:
    paths = world.build(tmp_path, world.config())
    sas = SASRecCfg(hidden=8, num_blocks=1, max_len=4)
    cfg = Config(model=sas, sampler=UniformSamplerCfg(n_neg=3))
    out = sample_negatives.run(cfg, paths, "default")
    manifest = read_json(paths.train_pool_manifest)
    assert out == manifest
    assert pl.read_parquet(paths.train_pool).height == 0
    assert manifest["side"] == "on_the_fly" and manifest["rows"] == 0
    assert manifest["sampler"]["name"] == "uniform" and manifest["n_neg"] == 3
    assert manifest["seed"] == cfg.base.seed and manifest["exclude"] == "train"
    # every training position: the 3 targets of each user's 4 training items
    draw = manifest["statistics_draw"]
    assert draw == {"positions": world.N_USERS * 3, "negatives": world.N_USERS * 3 * 3}
    assert 0 < manifest["statistics"]["distinct_items"] <= world.N_ITEMS
    full = Config(model=sas.model_copy(update={"loss": "full_softmax"}))
    assert sample_negatives.run(full, paths, "default")["n_neg"] == 0
