"""The sampler section of the config: every plug-in has typed, validated fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from negsamp.config import Config
from tests.unit.samplers.helpers import sampler_cfg


def test_common_options_and_defaults() -> None:
    cfg = sampler_cfg("uniform")
    assert (cfg.n_neg, cfg.pool_epochs, cfg.replace, cfg.exclude) == (4, 5, True, "train")
    assert cfg.side == "data" and cfg.pool_width == 4
    assert sampler_cfg("popularity", exclude="train+valid", replace=False).exclude == "train+valid"
    with pytest.raises(ValidationError):
        sampler_cfg("uniform", exclude="test")


def test_stratified_validation() -> None:
    assert sampler_cfg("stratified").bands == (0.2, 0.3, 0.5)
    assert sampler_cfg("stratified", bands=[0.5, 0.5], band_edges=[0.9]).band_edges == (0.9,)
    with pytest.raises(ValidationError, match="3 bands need 2 band_edges"):
        sampler_cfg("stratified", band_edges=[0.9])
    with pytest.raises(ValidationError, match="summing to 1"):
        sampler_cfg("stratified", bands=[0.5, 0.3, 0.3])
    with pytest.raises(ValidationError, match="strictly decreasing"):
        sampler_cfg("stratified", band_edges=[0.5, 0.9])


def test_teacher_hard_fields() -> None:
    cfg = sampler_cfg("teacher_hard", teacher="models/run-3", top_k=20, skip_top=2)
    assert (cfg.teacher, cfg.top_k, cfg.skip_top) == ("models/run-3", 20, 2)
    with pytest.raises(ValidationError, match="top_k >= n_neg"):
        sampler_cfg("teacher_hard", top_k=2, n_neg=4, replace=False)


def test_batch_side_configs() -> None:
    ib = sampler_cfg("in_batch", logq_correction=False)
    assert ib.side == "batch" and ib.pool_width == 0 and ib.logq_correction is False
    # in-batch has no n_neg (the batch is the negatives): the section's n_neg does not reach it
    assert not hasattr(sampler_cfg("in_batch", n_neg=4), "n_neg")
    hard = sampler_cfg("hard", base="popularity", candidates=16, k=2, temperature=0.5)
    assert (hard.n_neg, hard.pool_width, hard.side) == (2, 16, "batch")
    base = hard.base_cfg()
    assert (base.name, base.alpha, base.n_neg) == ("popularity", 0.75, 16)
    with pytest.raises(ValidationError, match="exceeds candidates"):
        sampler_cfg("hard", candidates=4, k=5)
    with pytest.raises(ValidationError):
        sampler_cfg("hard", temperature=0)
    mixed = sampler_cfg("mixed", n_neg=5, hard_fraction=0.4, candidates=10, max_item_share=0.01)
    assert (mixed.n_hard, mixed.n_random, mixed.pool_width) == (2, 3, 13)
    assert mixed.base_cfg().name == "uniform" and mixed.base_cfg().n_neg == 13
    with pytest.raises(ValidationError, match="exceed candidates"):
        sampler_cfg("mixed", n_neg=8, hard_fraction=1.0, candidates=4)


def test_overrides_reach_the_sampler_fields() -> None:
    cfg = Config.model_validate({"sampler": {"name": "mixed", "mixed": {"max_item_share": None}}})
    assert cfg.sampler.active.max_item_share is None
