"""#14: the popularity sampler's popularity by events (positives) or by summed weight."""

from __future__ import annotations

import numpy as np
import pytest

from negsamp.config import PopularitySamplerCfg
from negsamp.interactions import Interactions
from negsamp.samplers import build_sampler
from negsamp.samplers.popularity import popularity_weights

# item 0: two users, strength 1 + 1; item 1: one user, strength 10; item 2: none
TRAIN = Interactions.from_arrays(
    np.array([0, 1, 2]), np.array([0, 0, 1]), 3, 3, np.array([1.0, 1.0, 10.0])
)


def test_popularity_by_events_or_weight() -> None:
    assert popularity_weights(TRAIN, 1.0).tolist() == [2.0, 1.0, 0.0]
    assert popularity_weights(TRAIN, 1.0, "weight").tolist() == [2.0, 10.0, 0.0]
    assert popularity_weights(TRAIN, 0.5, "weight") == pytest.approx([2**0.5, 10**0.5, 0.0])


def test_sampler_draws_by_weight() -> None:
    cfg = PopularitySamplerCfg(alpha=1.0, n_neg=50, by="weight")
    sampler = build_sampler(cfg, TRAIN)
    assert sampler.describe()["by"] == "weight"
    assert "by" not in build_sampler(cfg.model_copy(update={"by": "events"}), TRAIN).describe()
    empty = Interactions.from_arrays(np.array([], int), np.array([], int), 1, 3)
    negs = sampler.sample(
        empty, np.zeros(2000, np.int64), np.zeros(2000, np.int64), 1, np.random.default_rng(0)
    )
    share = np.bincount(negs.ravel(), minlength=3) / negs.size
    assert share == pytest.approx([2 / 12, 10 / 12, 0.0], abs=0.03)
