"""teacher_hard: mining picks the teacher's top non-positives, skips the top few, is cached."""

from __future__ import annotations

import numpy as np
import pytest

from negsamp.interactions import Interactions
from negsamp.samplers import SamplingError, build_sampler
from negsamp.samplers.teacher import mine_hard_negatives
from tests.unit.samplers.helpers import sampler_cfg


def score_by_id(users: np.ndarray) -> np.ndarray:
    """Item i scores i for everyone (so the best items are the highest ids)."""
    return np.tile(np.arange(10, dtype=np.float64), (len(users), 1))


def test_mining_ranks_non_positives_skips_the_top_and_breaks_ties_by_id() -> None:
    pos = Interactions.from_arrays([0, 0, 1], [9, 7, 0], n_users=2, n_items=10)
    mined, valid = mine_hard_negatives(score_by_id, pos, np.array([0, 1]), top_k=3, skip_top=1)
    assert mined.tolist() == [[6, 5, 4], [8, 7, 6]]  # user 0: 9, 7 positive; 8 skipped
    assert valid.tolist() == [3, 3]

    def tied(users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), 10))

    mined, _ = mine_hard_negatives(tied, pos, np.array([0]), top_k=4, skip_top=0)
    assert mined.tolist() == [[0, 1, 2, 3]]


def test_mining_never_returns_a_positive_even_when_the_teacher_loves_them() -> None:
    pos = Interactions.from_arrays([0, 0, 0], [1, 2, 3], n_users=1, n_items=5)

    def loves_positives(users: np.ndarray) -> np.ndarray:
        return np.array([[-np.inf, 1e30, np.nan, 1e30, 0.0]])

    mined, valid = mine_hard_negatives(loves_positives, pos, np.array([0]), top_k=4)
    assert valid.tolist() == [2]
    assert sorted(mined[0, :2].tolist()) == [0, 4]


def test_mining_accepts_torch_scores_and_checks_the_shape() -> None:
    import torch

    pos = Interactions.from_arrays([0], [9], n_users=1, n_items=10)
    mined, _ = mine_hard_negatives(
        lambda u: torch.arange(10.0).repeat(len(u), 1), pos, np.array([0]), 2
    )
    assert mined.tolist() == [[8, 7]]
    with pytest.raises(ValueError, match="expected \\(1, 10\\)"):
        mine_hard_negatives(lambda u: np.zeros((1, 9)), pos, np.array([0]), 2)


def test_sampler_draws_only_from_the_mined_list_and_mines_each_chunk_once() -> None:
    pos = Interactions.from_arrays([0, 0, 1], [9, 7, 0], n_users=2, n_items=10)
    calls: list[list[int]] = []

    def counted(users: np.ndarray) -> np.ndarray:
        calls.append(users.tolist())
        return score_by_id(users)

    cfg = sampler_cfg("teacher_hard", top_k=3, skip_top=1, replace=False, n_neg=3)
    s = build_sampler(cfg, pos, score_all=counted)
    users = np.array([0, 0, 1])
    for seed in range(3):
        negs = s.sample(pos, users, users, 3, np.random.default_rng(seed))
        assert sorted(negs[0].tolist()) == [4, 5, 6] and sorted(negs[2].tolist()) == [6, 7, 8]
    assert calls == [[0, 1]]  # one id-aligned chunk, mined once
    assert s.describe()["users_mined"] == 2
    with pytest.raises(SamplingError, match="n_neg=4 but user . has . of 10"):
        s.sample(pos, users, users, 4, np.random.default_rng(0))


def test_a_user_whose_list_is_empty_after_skipping_gets_a_clear_error() -> None:
    pos = Interactions.from_arrays([0] * 8, range(8), n_users=1, n_items=10)
    s = build_sampler(sampler_cfg("teacher_hard", skip_top=2), pos, score_all=score_by_id)
    with pytest.raises(SamplingError, match="user 0 has 0 of 10"):
        s.sample(pos, np.zeros(1, np.int64), np.zeros(1), 1, np.random.default_rng(0))


@pytest.mark.parametrize("n_items", [60, 2000])
def test_mining_in_row_slices_reads_the_scores_only_and_matches_the_definition(
    monkeypatch: pytest.MonkeyPatch, n_items: int
) -> None:
    """#17: mining copies ROWS rows of scores at a time (bounded memory) and never writes
    the teacher's array; the lists equal those of one slice holding every row and the
    definition, ties at the cut (quantized scores) and non-finite scores included."""
    import negsamp.samplers.teacher as teacher

    rng = np.random.default_rng(0)
    n_users = 40
    users = np.repeat(np.arange(n_users), 12)
    pos = Interactions.from_arrays(users, rng.integers(0, n_items, users.size), n_users, n_items)
    scores = np.round(rng.normal(size=(n_users, n_items)), 1).astype(np.float32)  # many ties
    scores[3, 5], scores[7, 2], scores[9, 1] = np.nan, np.inf, -np.inf
    before = scores.copy()
    who = np.arange(n_users)
    sliced = mine_hard_negatives(lambda u: scores[u], pos, who, top_k=8, skip_top=2)
    assert np.array_equal(scores, before, equal_nan=True)  # read, never written
    monkeypatch.setattr(teacher, "ROWS", n_users)
    whole = mine_hard_negatives(lambda u: scores[u].copy(), pos, who, top_k=8, skip_top=2)
    assert np.array_equal(sliced[0], whole[0]) and np.array_equal(sliced[1], whole[1])
    assert not pos.contains(who[:, None], sliced[0]).any()
    # the definition: non-positives by (score desc, id), nan as -max, +-inf as +-max
    low = np.finfo(np.float32).max
    clean = np.nan_to_num(before, nan=-low, posinf=low, neginf=-low)
    for u in range(n_users):  # a test may loop: the reference, one user at a time
        free = np.setdiff1d(np.arange(n_items), pos.indices[pos.indptr[u] : pos.indptr[u + 1]])
        ranked = free[np.lexsort((free, -clean[u, free]))]
        assert sliced[0][u].tolist() == ranked[2:10].tolist()
