"""Batch-side negatives and the torch draws: masking, logQ, hard picks, caps, exactness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from negsamp.interactions import Interactions
from negsamp.samplers.batch import (
    ItemCap,
    TorchPositives,
    hard_negatives,
    in_batch_logits,
    item_log_q,
    mix_negatives,
    uniform_excluding_torch,
    weighted_excluding_torch,
)
from negsamp.samplers.exact import SamplingError
from tests.unit.samplers.helpers import csr

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _positives() -> Interactions:
    # user 0: items 1, 3; user 1: item 2; user 2: items 0, 3
    return Interactions.from_arrays([0, 0, 1, 2, 2], [1, 3, 2, 0, 3], n_users=3, n_items=5)


def test_item_log_q_is_the_log_share_of_batch_positives() -> None:
    got = item_log_q(np.array([3, 1, 0, 4]))
    assert got.dtype == torch.float32
    assert got.tolist() == pytest.approx(
        [math.log(3 / 8), math.log(1 / 8), math.log(1 / 8), math.log(4 / 8)]
    )


def test_in_batch_masks_accidental_hits_and_applies_log_q() -> None:
    pos = TorchPositives(_positives())
    users = torch.tensor([0, 1, 2, 0])
    items = torch.tensor([1, 2, 3, 3])  # row 3 repeats user 0; item 3 is also user 2's
    scores = torch.arange(16.0).reshape(4, 4)
    logits = in_batch_logits(scores, users, items, pos.contains)
    inf = float("-inf")
    # row 0 (user 0): item 3 (cols 2, 3) is its positive; row 2 (user 2): col 3 holds item 3 again
    assert logits.tolist() == [
        [0, 1, inf, inf],
        [4, 5, 6, 7],
        [8, 9, 10, inf],
        [inf, 13, inf, 15],
    ]
    log_q = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    corrected = in_batch_logits(scores, users, items, pos.contains, log_q)
    finite = torch.isfinite(logits)
    want = scores - log_q[items][None, :]
    assert torch.allclose(corrected[finite], want[finite])
    assert torch.equal(torch.isfinite(corrected), finite)


def test_in_batch_keeps_gradients() -> None:
    pos = TorchPositives(_positives())
    scores = torch.zeros(2, 2, requires_grad=True)
    out = in_batch_logits(scores, torch.tensor([0, 1]), torch.tensor([1, 4]), pos.contains)
    torch.log_softmax(out, 1).diagonal().sum().backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("logq", [False, True])
def test_in_batch_bias_gives_the_bytes_of_subtract_then_mask(logq: bool) -> None:
    """#17: mask and logQ as one additive bias (one add in the graph): the loss and the
    score gradient equal those of subtracting logQ, then masked_fill, bit for bit."""
    pos = TorchPositives(_positives())
    gen = torch.Generator().manual_seed(0)
    users = torch.randint(0, 3, (64,), generator=gen)
    items = torch.randint(0, 5, (64,), generator=gen)
    log_q = torch.rand(5, generator=gen).log() if logq else None
    base = torch.randn(64, 64, generator=gen)
    grads, losses = [], []
    for new in (True, False):
        scores = base.clone().requires_grad_(True)
        if new:
            logits = in_batch_logits(scores, users, items, pos.contains, log_q)
        else:  # the former formulation
            hits = torch.isinf(in_batch_logits(base, users, items, pos.contains))
            logits = scores if log_q is None else scores - log_q[items][None, :]
            logits = logits.masked_fill(hits, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(64))
        loss.backward()
        grads.append(scores.grad)
        losses.append(loss.detach())
    assert torch.equal(losses[0], losses[1]) and torch.equal(grads[0], grads[1])


def test_hard_picks_the_top_scored_candidates() -> None:
    def score(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return (i * (u + 1)).float() % 7  # per-user scores

    users = torch.tensor([0, 1])
    cands = torch.tensor([[5, 2, 6, 1], [3, 4, 0, 6]])
    got = hard_negatives(score, users, cands, 2)
    # user 0 scores 5, 2, 6, 1; user 1 scores 6, 1, 0, 5
    assert got.tolist() == [[6, 5], [3, 6]]


def test_hard_with_temperature_is_seeded_and_follows_the_softmax() -> None:
    def score(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return i.float()

    users = torch.zeros(40_000, dtype=torch.long)
    cands = torch.arange(4).repeat(40_000, 1)
    a = hard_negatives(score, users, cands, 1, 2.0, torch.Generator().manual_seed(0))
    b = hard_negatives(score, users, cands, 1, 2.0, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    p = torch.softmax(torch.arange(4.0) / 2.0, 0).numpy()
    counts = np.bincount(a.numpy().ravel(), minlength=4)
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-3
    two = hard_negatives(score, users[:100], cands[:100], 2, 2.0, torch.Generator().manual_seed(1))
    assert (two[:, 0] != two[:, 1]).all()  # without replacement


def test_mix_negatives_puts_hard_first() -> None:
    got = mix_negatives(torch.tensor([[1], [2]]), torch.tensor([[7, 8], [9, 10]]))
    assert got.tolist() == [[1, 7, 8], [2, 9, 10]]


def test_item_cap_replaces_over_cap_uses_and_counts_them() -> None:
    cap = ItemCap(n_items=10, max_share=0.25, epoch_negatives=12)  # cap = 3 uses per epoch
    negs = torch.tensor([[4, 4], [4, 4], [5, 4]])
    fresh = iter(range(100))

    def redraw(rows: torch.Tensor, taken: torch.Tensor | None) -> torch.Tensor:
        assert taken is None  # with replacement: no row items to avoid
        return torch.tensor([6 + next(fresh) % 3 for _ in rows.tolist()])

    out = cap.apply(negs, redraw)
    assert (out == 4).sum() == 3 and out[2, 0] == 5  # the first three uses of 4 stay
    assert cap.replaced == 2 and cap.overflow == 0
    out2 = cap.apply(torch.tensor([[4, 5]]), lambda rows, _: torch.full_like(rows, 9))
    assert out2.tolist() == [[9, 5]]
    cap.reset()
    assert cap.apply(torch.tensor([[4, 4]]), redraw).tolist() == [[4, 4]]


def test_item_cap_distinct_redraws_avoid_the_rest_of_the_row() -> None:
    """Issue #12: with ``distinct`` (replace: false) over-cap cells are redrawn column by
    column, each seeing the row's kept items and earlier redraws, its own cell as free (-1)."""
    cap = ItemCap(n_items=10, max_share=0.1, epoch_negatives=10)  # cap = 1 use per epoch
    negs = torch.tensor([[1, 2, 3], [1, 2, 4]])  # row 1: items 1 and 2 are over the cap
    seen = []

    def redraw(rows: torch.Tensor, taken: torch.Tensor | None) -> torch.Tensor:
        assert taken is not None
        seen.append((rows.tolist(), taken.tolist()))
        return torch.full_like(rows, 7 + len(seen))  # 8, then 9

    out = cap.apply(negs, redraw, distinct=True)
    assert out.tolist() == [[1, 2, 3], [8, 9, 4]]
    assert seen == [([1], [[-1, -1, 4]]), ([1], [[8, -1, 4]])]
    assert cap.replaced == 2 and cap.overflow == 0


@settings(max_examples=60, deadline=None)
@given(pos=csr(min_free=3), seed=st.integers(0, 2**31 - 1), alpha=st.floats(0, 1))
def test_torch_draws_avoid_the_taken_items(pos: Interactions, seed: int, alpha: float) -> None:
    """Issue #12: ``taken`` items (some of them positives, repeats or -1 padding, which
    do not count) are never drawn, nor are positives; at least one item stays free."""
    tp = TorchPositives(pos)
    users = torch.arange(pos.n_users).repeat(3)
    rng = np.random.default_rng(seed)
    taken = torch.as_tensor(rng.integers(-1, pos.n_items, (users.numel(), 2)))
    g = torch.Generator().manual_seed(seed)
    w = torch.arange(1, pos.n_items + 1, dtype=torch.float64).pow(alpha)
    for negs in (
        uniform_excluding_torch(tp, users, 3, g, taken=taken),
        weighted_excluding_torch(tp, users, 3, w, g, rounds=1, taken=taken),
    ):
        assert negs.shape == (users.numel(), 3)
        assert not tp.contains(users[:, None], negs).any()
        assert not (negs[:, :, None] == taken[:, None, :]).any()


@pytest.mark.parametrize("rounds", [0, 8])  # the exact bisection alone, then rejection
def test_torch_draws_with_taken_follow_the_restricted_target(rounds: int) -> None:
    """User 0: positives 1, 3; taken 0, 4, 3 (a positive), -1 (no item): 2 and 5 are left."""
    pos = TorchPositives(Interactions.from_arrays([0, 0], [1, 3], n_users=1, n_items=6))
    users = torch.zeros(30_000, dtype=torch.long)
    taken = torch.tensor([[0, 4, 3, -1]]).expand(30_000, 4)
    g = torch.Generator().manual_seed(0)
    uni = uniform_excluding_torch(pos, users, 1, g, taken=taken)
    w = torch.arange(1.0, 7.0, dtype=torch.float64)  # items 2 and 5 weigh 3 and 6
    wei = weighted_excluding_torch(pos, users, 1, w, g, rounds=rounds, taken=taken)
    for negs, want in ((uni, [0, 0, 0.5, 0, 0, 0.5]), (wei, [0, 0, 1 / 3, 0, 0, 2 / 3])):
        freq = np.bincount(negs.numpy().ravel(), minlength=6) / negs.numel()
        assert freq == pytest.approx(want, abs=0.01)


def test_torch_draws_error_when_taken_leaves_nothing() -> None:
    pos = TorchPositives(Interactions.from_arrays([0], [1], n_users=1, n_items=3))
    taken = torch.tensor([[0, 2]])
    with pytest.raises(SamplingError, match="not already in its row"):
        uniform_excluding_torch(pos, torch.zeros(1, dtype=torch.long), 1, taken=taken)
    w = torch.ones(3, dtype=torch.float64)
    with pytest.raises(SamplingError, match="not already in its row"):
        weighted_excluding_torch(pos, torch.zeros(1, dtype=torch.long), 1, w, taken=taken)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_positives_contains(device: str) -> None:
    inter = _positives()
    pos = TorchPositives(inter, device)
    u = torch.arange(3, device=device)[:, None].expand(3, 5)
    i = torch.arange(5, device=device)[None, :].expand(3, 5)
    want = inter.contains(np.arange(3)[:, None], np.arange(5)[None, :])
    assert pos.contains(u, i).cpu().numpy().tolist() == want.tolist()


@settings(max_examples=80, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**31 - 1), n_neg=st.integers(1, 6), alpha=st.floats(0, 1))
def test_torch_draws_never_return_a_positive(
    pos: Interactions, seed: int, n_neg: int, alpha: float
) -> None:
    tp = TorchPositives(pos)
    users = torch.arange(pos.n_users).repeat(3)
    g = torch.Generator().manual_seed(seed)
    u = uniform_excluding_torch(tp, users, n_neg, g)
    assert u.shape == (users.numel(), n_neg) and u.dtype == torch.int64
    assert not tp.contains(users[:, None], u).any()
    w = torch.arange(1, pos.n_items + 1, dtype=torch.float64).pow(alpha)
    v = weighted_excluding_torch(tp, users, n_neg, w, g, rounds=1)
    assert not tp.contains(users[:, None], v).any()
    assert ((v >= 0) & (v < pos.n_items)).all()


def test_torch_weighted_matches_the_restricted_target() -> None:
    pos = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=5)
    w = torch.tensor([100.0, 50.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    negs = weighted_excluding_torch(
        TorchPositives(pos), torch.zeros(1, dtype=torch.long), 60_000, w, g, rounds=0
    )
    freq = np.bincount(negs.numpy().ravel(), minlength=5) / negs.numel()
    assert freq == pytest.approx([0, 0, 1 / 6, 2 / 6, 3 / 6], abs=0.01)


def test_torch_uniform_errors_for_a_user_with_no_negative() -> None:
    pos = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=2)
    with pytest.raises(SamplingError, match="user 0"):
        uniform_excluding_torch(TorchPositives(pos), torch.zeros(1, dtype=torch.long), 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_draws_are_exact() -> None:
    rng = np.random.default_rng(0)
    inter = Interactions.from_arrays(
        rng.integers(0, 500, 20_000), rng.integers(0, 300, 20_000), 500, 300
    )
    tp = TorchPositives(inter, "cuda")
    users = torch.arange(500, device="cuda").repeat(20)
    g = torch.Generator(device="cuda").manual_seed(0)
    assert not tp.contains(users[:, None], uniform_excluding_torch(tp, users, 8, g)).any()
    w = torch.as_tensor(inter.item_counts(), dtype=torch.float64, device="cuda").pow(0.75)
    assert not tp.contains(users[:, None], weighted_excluding_torch(tp, users, 8, w, g)).any()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_draws_with_taken_are_exact() -> None:
    """Issue #12 on CUDA: draws avoid the positives and the row's taken items."""
    rng = np.random.default_rng(1)
    inter = Interactions.from_arrays(rng.integers(0, 200, 4000), rng.integers(0, 50, 4000), 200, 50)
    tp = TorchPositives(inter, "cuda")
    users = torch.arange(200, device="cuda").repeat(10)
    taken = torch.as_tensor(rng.integers(-1, 50, (2000, 3)), device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.as_tensor(inter.item_counts(), dtype=torch.float64, device="cuda").pow(0.75)
    avail = 50 - tp.degrees(users)
    keep = avail > 3  # users with a free item whatever is taken
    users, taken = users[keep], taken[keep]
    for negs in (
        uniform_excluding_torch(tp, users, 4, g, taken=taken),
        weighted_excluding_torch(tp, users, 4, w, g, rounds=1, taken=taken),
    ):
        assert not tp.contains(users[:, None], negs).any()
        assert not (negs[:, :, None] == taken[:, None, :]).any()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_draws_are_seeded_exact_and_on_target() -> None:
    """Issue #3: on CUDA the same seed gives the same draws, the bisection fallback
    (rounds=0) never returns a positive, and both draws follow their target over the
    user's non-positives."""
    pos = Interactions.from_arrays([0, 0, 1], [0, 1, 4], n_users=2, n_items=5)
    tp = TorchPositives(pos, "cuda")
    users = torch.tensor([0, 1], device="cuda").repeat(30_000)
    w = torch.tensor([100.0, 50.0, 1.0, 2.0, 3.0], dtype=torch.float64, device="cuda")

    def draws(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator(device="cuda").manual_seed(seed)
        return (
            uniform_excluding_torch(tp, users, 4, g),
            weighted_excluding_torch(tp, users, 4, w, g, rounds=0),
        )

    (u1, v1), (u2, v2) = draws(7), draws(7)
    assert torch.equal(u1, u2) and torch.equal(v1, v2)
    assert not torch.equal(u1, draws(8)[0])
    for negs in (u1, v1):
        assert negs.device.type == "cuda" and not tp.contains(users[:, None], negs).any()
    for user, uni, wanted in (
        (0, [0, 0, 1 / 3, 1 / 3, 1 / 3], [0, 0, 1 / 6, 2 / 6, 3 / 6]),
        (1, [0.25, 0.25, 0.25, 0.25, 0], [100 / 153, 50 / 153, 1 / 153, 2 / 153, 0]),
    ):
        rows = (users == user).cpu().numpy()
        for negs, want in ((u1, uni), (v1, wanted)):
            got = np.bincount(negs.cpu().numpy()[rows].ravel(), minlength=5) / (rows.sum() * 4)
            assert got == pytest.approx(want, abs=0.01)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dense_cells", [0, 1 << 26])  # binary searches / dense rows
def test_outer_product_lookup_matches_pairwise_lookup(
    device: str, dense_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from negsamp.samplers import torch_exact

    monkeypatch.setattr(torch_exact, "DENSE_CELLS", dense_cells)
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 30
    keys = np.unique(rng.integers(0, n_users * n_items, 300))
    keys = keys[keys // n_items != 7]  # user 7 has no positive
    pos = TorchPositives(
        Interactions.from_arrays(keys // n_items, keys % n_items, n_users, n_items), device
    )
    users = torch.as_tensor(rng.integers(0, n_users, 25), device=device)  # with repeats
    users[0] = 7
    items = torch.as_tensor(rng.integers(0, n_items, 18), device=device)
    got = pos.contains(users[:, None], items[None, :])
    want = torch.tensor(
        [[u * n_items + i in set(keys.tolist()) for i in items.tolist()] for u in users.tolist()]
    )
    assert got.shape == (25, 18) and torch.equal(got.cpu(), want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("own_positive", [True, False])
def test_in_batch_mask_equals_the_pairwise_definition(device: str, own_positive: bool) -> None:
    """Repeated users and items; rows whose item is (or is not) a positive of their user."""
    rng = np.random.default_rng(11)
    n_users, n_items, b = 30, 12, 64
    keys = np.unique(rng.integers(0, n_users * n_items, 120))
    pos = TorchPositives(
        Interactions.from_arrays(keys // n_items, keys % n_items, n_users, n_items), device
    )
    pick = keys[rng.integers(0, keys.size, b)]
    users, items = pick // n_items, pick % n_items
    if not own_positive:
        items = rng.integers(0, n_items, b)  # some rows' items are not their user's positives
    u = torch.as_tensor(users, device=device)
    p = torch.as_tensor(items, device=device)
    scores = torch.randn(b, b, device=device)
    log_q = torch.randn(n_items, device=device)
    known = set(keys.tolist())
    want = torch.tensor(
        [
            [
                i != j and (users[i] * n_items + items[j] in known or items[j] == items[i])
                for j in range(b)
            ]
            for i in range(b)
        ]
    )
    for lq in (None, log_q):
        out = in_batch_logits(scores, u, p, pos.contains, lq).cpu()
        assert torch.equal(torch.isneginf(out), want)
        ref = scores if lq is None else scores - lq[p][None, :]
        assert torch.equal(out[~want], ref.cpu()[~want])
