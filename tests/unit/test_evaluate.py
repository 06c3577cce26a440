"""The scoring engine: pessimistic ranks, masking, ties, NaN, batching, devices (issue #5)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import evaluate as ev
from negsamp.interactions import Interactions
from negsamp.metrics.ranking import per_user_mean, sampled_row_metrics

CPU = torch.device("cpu")
KS = (1, 5, 10)


def _cands(n_users: int = 4, n_cand: int = 99) -> pl.DataFrame:
    # user u's held-out item is u; candidates are 100..100+n_cand
    negs = np.tile(np.arange(100, 100 + n_cand, dtype=np.int32), (n_users, 1))
    return pl.DataFrame(
        {
            "user": np.arange(n_users, dtype=np.int32),
            "item": np.arange(n_users, dtype=np.int32),
            "candidates": pl.Series(negs, dtype=pl.Array(pl.Int32, n_cand)),
        }
    )


def _test(users: list[int], items: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"user": users, "item": items}, schema={"user": pl.Int32, "item": pl.Int32})


def _sampled_summary(ranks: np.ndarray, users: np.ndarray, ks: tuple[int, ...]) -> dict:
    frame = per_user_mean(users, sampled_row_metrics(ranks, ks))
    return {c: float(frame[c].mean()) for c in frame.columns if c != "user"}


def test_perfect_scorer_gets_hr_1_and_ndcg_1() -> None:
    def score(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (items == users[:, None]).float()

    c = _cands()
    ranks = ev.sampled_ranks(score, c, CPU, batch=3)
    m = _sampled_summary(ranks, c["user"].to_numpy(), KS)
    assert m["sampled_hr_1"] == 1.0 and m["sampled_ndcg_1"] == 1.0 and m["sampled_ndcg_10"] == 1.0
    assert m["sampled_mrr"] == 1.0


def test_constant_scorer_gets_the_pessimistic_value() -> None:
    c = _cands()
    ranks = ev.sampled_ranks(lambda u, i: torch.zeros(i.shape), c, CPU, batch=2)
    assert ranks.tolist() == [99] * 4
    m = _sampled_summary(ranks, c["user"].to_numpy(), (10, 100))
    assert m["sampled_hr_10"] == 0.0 and m["sampled_ndcg_10"] == 0.0
    # K larger than the candidate list: every item is in the top K
    assert m["sampled_hr_100"] == 1.0
    assert m["sampled_ndcg_100"] == pytest.approx(1 / math.log2(101))
    assert m["sampled_mrr"] == pytest.approx(1 / 100)


def test_nan_scores_rank_last_not_first() -> None:
    def score(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        s = torch.rand(items.shape, generator=torch.Generator().manual_seed(0))
        s[:, 0] = float("nan")  # the held-out item
        return s

    assert ev.sampled_ranks(score, _cands(n_cand=9), CPU, batch=4).tolist() == [9] * 4


def test_full_ranking_masks_training_items_and_counts_ties_against_the_model() -> None:
    # 1 user, 6 items; scores descend with item id; items 0 and 1 are training positives
    seen = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=6)
    scores = torch.tensor([[6.0, 5.0, 4.0, 3.0, 3.0, 1.0]])
    fr = ev.full_ranking(lambda u: scores[u], seen, _test([0, 0], [3, 2]), 6, CPU, batch=8)
    # item 3 ties with item 4 (pessimistic) and is beaten by held-out item 2
    assert fr.below.tolist() == [1, 0] and fr.position.tolist() == [2, 0]
    assert fr.n_candidates.tolist() == [4] and fr.n_negatives().tolist() == [2]
    assert fr.top[0, 0] == 2 and set(fr.top[0, 1:3].tolist()) == {3, 4}
    assert fr.top[0, 3] == 5 and fr.top[0, 4:].tolist() == [-1, -1]  # only 4 candidates


def test_held_out_items_that_tie_take_consecutive_positions() -> None:
    seen = Interactions.from_arrays([], [], n_users=1, n_items=4)
    flat = torch.ones(1, 4)
    fr = ev.full_ranking(lambda u: flat[u], seen, _test([0, 0], [1, 3]), 2, CPU, batch=1)
    assert fr.below.tolist() == [2, 2]  # both below every irrelevant item
    assert sorted(fr.position.tolist()) == [2, 3]  # the bottom two slots, not both slot 3


def test_nan_target_ranks_last_in_full_ranking() -> None:
    seen = Interactions.from_arrays([], [], n_users=1, n_items=5)
    s = torch.tensor([[float("nan"), 1.0, float("-inf"), 2.0, float("inf")]])
    fr = ev.full_ranking(lambda u: s[u], seen, _test([0], [0]), 5, CPU, batch=1)
    assert fr.below.tolist() == [4]  # -inf and NaN tie at the bottom: the tie goes against it


def test_a_masked_held_out_item_is_refused() -> None:
    seen = Interactions.from_arrays([0], [2], n_users=1, n_items=4)
    with pytest.raises(ValueError, match="must not be masked"):
        ev.full_ranking(lambda u: torch.zeros(1, 4), seen, _test([0], [2]), 2, CPU, batch=1)


def _reference(scores: np.ndarray, seen: Interactions, users: np.ndarray, items: np.ndarray):
    """Per-row loop with a full sort: what full_ranking must agree with."""
    below, position = [], []
    for u, i in zip(users, items, strict=True):
        s = scores[u].astype(np.float64)
        cand = np.ones(s.size, bool)
        cand[seen.indices[seen.indptr[u] : seen.indptr[u + 1]]] = False
        held = items[users == u]
        irrelevant = cand.copy()
        irrelevant[held] = False
        b = int((s[irrelevant] >= s[i]).sum())
        better_held = int(((s[held] > s[i]) | ((s[held] == s[i]) & (held < i))).sum())
        below.append(b)
        position.append(b + better_held)
    return np.array(below), np.array(position)


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_full_ranking_matches_a_per_user_reference_and_ignores_batch_size(batch: int) -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 12, 30
    scores = rng.integers(0, 6, size=(n_users, n_items)).astype(np.float32)  # many ties
    seen = Interactions.from_arrays(
        rng.integers(0, n_users, 60), rng.integers(0, n_items, 60), n_users, n_items
    )
    pairs = {
        (int(u), int(i))
        for u, i in zip(rng.integers(0, n_users, 40), rng.integers(0, n_items, 40), strict=True)
    }
    pairs = sorted(p for p in pairs if not seen.contains(np.array([p[0]]), np.array([p[1]]))[0])
    rng.shuffle(pairs)  # rows in no particular order
    users = np.array([p[0] for p in pairs])
    items = np.array([p[1] for p in pairs])
    st = torch.from_numpy(scores)
    fr = ev.full_ranking(
        lambda u: st[u].clone(), seen, _test(users.tolist(), items.tolist()), 7, CPU, batch
    )
    below, position = _reference(scores, seen, users, items)
    assert fr.below.tolist() == below.tolist()
    # held-out items that tie may take their consecutive slots in either order
    for u in np.unique(users):
        rows = users == u
        assert sorted(fr.position[rows].tolist()) == sorted(position[rows].tolist())
    assert fr.row_user.tolist() == users.tolist() and fr.row_item.tolist() == items.tolist()


def test_dense_mask_marks_exactly_the_positives() -> None:
    pos = Interactions.from_arrays([0, 1, 1, 2], [3, 0, 2, 1], n_users=3, n_items=4)
    m = ev.dense_mask(pos, np.array([2, 1]), "cpu")
    assert m.tolist() == [[False, True, False, False], [True, False, True, False]]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_ranks_cpu_gives() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 50, 400
    scores = torch.from_numpy(rng.normal(size=(n_users, n_items)).astype(np.float32))
    seen = Interactions.from_arrays(
        rng.integers(0, n_users, 500), rng.integers(0, n_items, 500), n_users, n_items
    )
    test = _test(
        list(range(n_users)),
        [
            int(np.flatnonzero(~seen.contains(np.full(n_items, u), np.arange(n_items)))[0])
            for u in range(n_users)
        ],
    )
    cpu = ev.full_ranking(lambda u: scores[u.cpu()].to(u.device), seen, test, 20, "cpu", 16)
    gpu = ev.full_ranking(lambda u: scores[u.cpu()].to(u.device), seen, test, 20, "cuda", 16)
    assert np.array_equal(cpu.below, gpu.below) and np.array_equal(cpu.position, gpu.position)
    assert np.array_equal(cpu.top, gpu.top)


@pytest.mark.parametrize("n", [1, 7, 2040, 2041, 5000])
def test_packed_count_equals_a_plain_count(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    s = torch.randint(0, 4, (5, n), generator=g).float()  # many ties
    t = s[:, 0].clone()
    work = ev._workspace(8, n, "cpu")  # more rows than the batch: reused, padding stays False
    for _ in range(2):
        assert ev._count_ge(s, t, work).tolist() == (s >= t[:, None]).sum(1).tolist()
    assert ev._count_ge(s, t).tolist() == (s >= t[:, None]).sum(1).tolist()
