"""The batch objectives: the ``mixed`` item cap redraws from the pool's candidate set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from negsamp.interactions import Interactions
from negsamp.models import objectives
from negsamp.samplers import SamplingError, build_sampler
from tests.unit.models.conftest import one_thread  # noqa: F401 - the autouse fixture
from tests.unit.samplers.helpers import csr, sampler_cfg


class Recorder:
    """A stand-in model: a fixed per-user score, and the negatives each loss call saw."""

    def __init__(self) -> None:
        self.negs: list[torch.Tensor] = []

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B], items int64 [B, C] -> float32 [B, C]."""
        return ((items * 7 + users[:, None] * 3) % 11).float()

    def loss(self, u, p, negs, l2, log_q, w) -> torch.Tensor:  # noqa: ANN001
        self.negs.append(negs.clone())
        return torch.zeros(())


def run_mixed(
    cfg, train: Interactions, exclude: Interactions | None, pool: np.ndarray, seed: int, batch: int
) -> tuple[np.ndarray, dict[str, float]]:  # noqa: ANN001
    """One epoch of ``mixed`` over pool int [n, pool_width]: (negatives int64 [n, n_neg], stats)."""
    users = torch.as_tensor(train.rows().astype(np.int64))
    pos = torch.as_tensor(train.indices.astype(np.int64))
    negs = torch.as_tensor(pool.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    obj = objectives.build(
        cfg, negs[None], users.numel(), train, train.n_items, False, gen, exclude
    )
    model = Recorder()
    obj.start_epoch()
    for lo in range(0, users.numel(), batch):
        sl = slice(lo, lo + batch)
        obj.loss(model, users[sl], pos[sl], negs[sl], 0.0, None)
    return torch.cat(model.negs).numpy(), obj.stats()


@settings(max_examples=60, deadline=None)
@given(full=csr(min_free=6, max_users=10, max_items=30), data=st.data())
def test_mixed_cap_redraws_never_return_an_excluded_or_repeated_item(
    full: Interactions, data: st.DataObject
) -> None:
    """Issue #12: with ``max_item_share`` active, ``mixed`` never returns an item of its
    ``exclude`` set (train, or train+valid: a user's validation item) and, with
    ``replace: false``, never repeats an item within a row; the same seed gives the same
    bytes. The cap's redraws used to exclude only the training positives, with replacement."""
    how = data.draw(st.sampled_from(["train", "train+valid"]), label="exclude")
    replace = data.draw(st.booleans(), label="replace")
    base = data.draw(st.sampled_from(["uniform", "popularity"]), label="base")
    alpha = data.draw(st.sampled_from([0.0, 0.75]), label="alpha")
    share = data.draw(st.sampled_from([1e-6, 0.05, 0.3]), label="max_item_share")
    hard = data.draw(st.sampled_from([0.0, 0.5]), label="hard_fraction")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    # the valid positives: a part of ``full``; train is the rest
    held = np.array(data.draw(st.lists(st.booleans(), min_size=full.nnz, max_size=full.nnz)))
    held = held.astype(bool).reshape(-1)
    rows = full.rows()
    train = Interactions.from_arrays(rows[~held], full.indices[~held], full.n_users, full.n_items)
    assume(train.nnz > 0)
    exclude = full if how == "train+valid" else train
    cfg = sampler_cfg(
        "mixed",
        n_neg=4,
        hard_fraction=hard,
        candidates=3,
        max_item_share=share,
        replace=replace,
        exclude=how,
        base=base,
        alpha=alpha,
    )
    sampler = build_sampler(cfg, train)
    try:  # the pool, as the sample-negatives stage draws it
        pool = sampler.sample(
            exclude, train.rows(), train.indices, cfg.pool_width, np.random.default_rng(seed)
        )
    except SamplingError:  # popularity with alpha > 0: too few items of non-zero weight
        assume(False)
    given_exclude = exclude if how == "train+valid" else None  # train resolves itself
    out, stats = run_mixed(cfg, train, given_exclude, pool, seed, batch=7)
    users = train.rows().astype(np.int64)
    assert out.shape == (train.nnz, 4)
    assert not exclude.contains(users[:, None], out).any()
    if not replace:
        s = np.sort(out, axis=1)
        assert (s[:, 1:] != s[:, :-1]).all()
    again, _ = run_mixed(cfg, train, given_exclude, pool, seed, batch=7)
    assert np.array_equal(out, again)
    assert stats["cap_replaced"] >= 0


def test_mixed_cap_redraws_skip_the_validation_item_and_the_row() -> None:
    """Issue #12, by hand: every user has training positive 0 and validation item 1; of
    the 6 items, 2..5 are left. Cap 1 forces most uses to be redrawn."""
    n_users = 8
    users = np.arange(n_users)
    train = Interactions.from_arrays(users, np.zeros(n_users, np.int64), n_users, 6)
    both = Interactions.from_arrays(np.repeat(users, 2), np.tile([0, 1], n_users), n_users, 6)
    pool = np.tile([[2, 3, 4, 5]], (n_users, 1))  # candidates=1, then 3 random columns
    for replace in (True, False):
        cfg = sampler_cfg(
            "mixed",
            n_neg=3,
            hard_fraction=0.0,
            candidates=1,
            max_item_share=1e-6,
            replace=replace,
            exclude="train+valid",
        )
        out, stats = run_mixed(cfg, train, both, pool, seed=0, batch=3)
        assert stats["cap_replaced"] > 0
        assert set(np.unique(out).tolist()) <= {2, 3, 4, 5}
        if not replace:
            assert all(len(set(r)) == 3 for r in out.tolist())


def test_mixed_cap_with_train_valid_needs_the_exclusions() -> None:
    train = Interactions.from_arrays([0, 1], [0, 1], 2, 6)
    cfg = sampler_cfg("mixed", n_neg=2, candidates=2, max_item_share=0.5, exclude="train+valid")
    pool = torch.zeros((1, 2, cfg.pool_width), dtype=torch.int64)
    with pytest.raises(ValueError, match="pass exclude="):
        objectives.build(cfg, pool, 2, train, 6, False, torch.Generator())
    other = Interactions.from_arrays([0], [0], 3, 6)
    with pytest.raises(ValueError, match="one split"):
        objectives.build(cfg, pool, 2, train, 6, False, torch.Generator(), other)
