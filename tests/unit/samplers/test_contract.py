"""Contract tests run for every registered sampler: a new plug-in gets them for free."""

from __future__ import annotations

import numpy as np
import pytest

from negsamp.config import Config
from negsamp.interactions import Interactions
from negsamp.samplers import build_sampler, registered
from negsamp.samplers.pool import training_pool


def _cfg(name: str):
    return Config.model_validate({"sampler": {"name": name, "n_neg": 3, "pool_epochs": 2}}).sampler


@pytest.fixture
def train() -> Interactions:
    rng = np.random.default_rng(0)
    u = rng.integers(0, 50, 600)
    i = np.minimum(rng.zipf(1.5, 600) - 1, 79)
    return Interactions.from_arrays(u, i, 50, 80)


@pytest.mark.parametrize("name", registered())
def test_sampler_never_emits_a_positive(name: str, train: Interactions) -> None:
    sampler = build_sampler(_cfg(name), train)
    users = train.rows()
    negs = sampler.sample(train, users, train.indices, 7, np.random.default_rng(3))
    assert negs.shape == (users.size, 7)
    assert not train.contains(users[:, None], negs).any()


@pytest.mark.parametrize("name", registered())
def test_same_seed_same_bytes_other_seed_other_bytes(
    name: str, train: Interactions, tmp_path
) -> None:
    from negsamp.io import md5_file, write_parquet

    def pool(seed: int, path: str) -> str:
        df = training_pool(build_sampler(_cfg(name), train), train, 3, 2, seed)
        write_parquet(tmp_path / path, df)
        return md5_file(tmp_path / path)

    assert pool(7, "a.parquet") == pool(7, "b.parquet")
    assert pool(7, "a.parquet") != pool(8, "c.parquet")


def test_unknown_sampler_lists_the_known_ones(train: Interactions) -> None:
    class Cfg:
        name = "nope"

    with pytest.raises(ValueError, match="known samplers: \\['popularity', 'uniform'\\]"):
        build_sampler(Cfg(), train)


def test_popularity_frequencies_match_count_power_alpha(train: Interactions) -> None:
    cfg = Config.model_validate({"sampler": {"name": "popularity", "alpha": 0.75}}).sampler
    sampler = build_sampler(cfg, train)
    user = int(np.argmin(train.user_degrees()))
    negs = sampler.sample(train, np.full(1, user), np.zeros(1), 200_000, np.random.default_rng(0))
    target = train.item_counts().astype(float) ** 0.75
    target[train.indices[train.indptr[user] : train.indptr[user + 1]]] = 0
    target /= target.sum()
    freq = np.bincount(negs.ravel(), minlength=train.n_items) / negs.size
    assert np.abs(freq - target).max() < 0.01
