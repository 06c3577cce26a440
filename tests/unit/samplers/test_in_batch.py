"""Issue #17: the in_batch softmax over distinct users x distinct items equals the B x B one.

Random batches with repeated users and items, accidental hits (the positives are dense),
rows of one user sharing items, logQ on and off: the per-row loss and the gradients of
both embedding tables agree with the B x B definition (InBatchRows.logits + cross-entropy)
to float64 rounding, and through a model's in_batch_loss to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from negsamp.interactions import Interactions
from negsamp.models import build_model, losses, model_config
from negsamp.samplers.in_batch import InBatch
from negsamp.samplers.torch_exact import TorchPositives

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _batch(seed: int, n_users: int = 25, n_items: int = 15, b: int = 300, density: float = 0.3):
    """Positives at ``density`` and a batch of b rows drawn from them (with repeats)."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, n_users * n_items, int(density * n_users * n_items)))
    inter = Interactions.from_arrays(keys // n_items, keys % n_items, n_users, n_items)
    pick = keys[rng.integers(0, keys.size, b)]
    users = torch.as_tensor(pick // n_items)
    items = torch.as_tensor(pick % n_items)
    return inter, users, items


def _slow_and_fast(task: InBatch, users: torch.Tensor, items: torch.Tensor, u_emb, i_emb):  # noqa: ANN001
    """(rows, grads) of the B x B definition and of distinct_rows, for cross = U V^T."""
    out = []
    for fast in (False, True):
        cross = lambda a, c: u_emb[a] @ i_emb[c].T  # noqa: E731
        batch = task(users, items)
        if fast:
            rows = batch.distinct_rows(cross)
        else:
            target = torch.arange(users.numel(), device=users.device)
            rows = F.cross_entropy(batch.logits(cross(users, items)), target, reduction="none")
        grads = torch.autograd.grad(
            (rows * torch.linspace(0.5, 2, rows.numel(), device=rows.device)).sum(), (u_emb, i_emb)
        )
        out.append((rows.detach(), grads))
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("logq", [False, True])
def test_distinct_rows_equal_the_batch_softmax(device: str, seed: int, logq: bool) -> None:
    inter, users, items = _batch(seed)
    users, items = users.to(device), items.to(device)
    assert users.unique().numel() < users.numel() and items.unique().numel() < items.numel()
    gen = torch.Generator().manual_seed(seed)
    log_q = torch.randn(inter.n_items, generator=gen, dtype=torch.float64) if logq else None
    log_q = None if log_q is None else log_q.to(device)
    task = InBatch(TorchPositives(inter, device).contains, log_q)
    batch = task(users, items)
    assert batch.own and bool(batch.grid.any())  # accidental hits present
    u_emb = torch.randn(inter.n_users, 6, generator=gen, dtype=torch.float64).to(device)
    i_emb = torch.randn(inter.n_items, 6, generator=gen, dtype=torch.float64).to(device)
    u_emb.requires_grad_(True)
    i_emb.requires_grad_(True)
    (slow, g_slow), (fast, g_fast) = _slow_and_fast(task, users, items, u_emb, i_emb)
    assert torch.allclose(fast, slow, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_fast, g_slow, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_user_with_only_hits_has_a_zero_loss_and_finite_gradients() -> None:
    """User 0's rows hold only its own positives: the label is the only column left."""
    inter = Interactions.from_arrays([0, 0, 0, 1, 1], [0, 1, 2, 1, 2], n_users=2, n_items=3)
    users, items = torch.tensor([0, 0, 1, 0]), torch.tensor([0, 1, 2, 1])
    u_emb = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    i_emb = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    task = InBatch(TorchPositives(inter).contains)
    (slow, g_slow), (fast, g_fast) = _slow_and_fast(task, users, items, u_emb, i_emb)
    assert fast[[0, 1, 3]].tolist() == [0.0, 0.0, 0.0] and fast[2] > 0
    assert torch.allclose(fast, slow, atol=1e-12)
    for a, b in zip(g_fast, g_slow, strict=True):
        assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-12)


def test_distinct_rows_refuse_a_row_whose_item_is_not_a_positive() -> None:
    inter = Interactions.from_arrays([0, 1], [0, 1], n_users=2, n_items=3)
    batch = InBatch(TorchPositives(inter).contains)(torch.tensor([0, 1]), torch.tensor([0, 2]))
    assert not batch.own
    with pytest.raises(ValueError, match="its user's positive"):
        batch.distinct_rows(lambda a, c: torch.zeros(a.numel(), c.numel()))


def _model_loss(name: str, raw: dict, inter: Interactions, users, items, log_q, fast: bool):  # noqa: ANN001
    cfg = model_config({"name": name, "factors": 8, **raw})
    model = build_model(cfg, inter.n_users, inter.n_items, torch.Generator().manual_seed(0))
    model.train()
    with torch.no_grad():  # away from the near-zero init, so the softmax is not flat
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    task = InBatch(TorchPositives(inter).contains, log_q)
    w = torch.linspace(0.5, 2.0, users.numel())
    if fast:
        assert model.distinct_cross
        loss = model.in_batch_loss(users, items, 0.01, task, w)
    else:  # the B x B path, as in_batch_loss ran before issue #17
        _, reg = model._score_reg(users, items.unsqueeze(1))
        logits = task(users, items).logits(model.score_cross(users, items))
        loss = losses.mean(losses.in_batch_softmax(logits), w) + 0.01 * reg / users.numel()
    grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    return loss.detach(), grads


@pytest.mark.parametrize(("name", "raw"), [("bpr", {}), ("lmf", {}), ("gmf", {})])
@pytest.mark.parametrize("logq", [False, True])
def test_model_in_batch_loss_equals_the_batch_softmax(name: str, raw: dict, logq: bool) -> None:
    inter, users, items = _batch(3, n_users=40, n_items=30, b=512)
    log_q = torch.randn(inter.n_items, generator=torch.Generator().manual_seed(2)) if logq else None
    slow, g_slow = _model_loss(name, raw, inter, users, items, log_q, fast=False)
    fast, g_fast = _model_loss(name, raw, inter, users, items, log_q, fast=True)
    assert torch.allclose(fast, slow, rtol=1e-5)
    for a, b in zip(g_fast, g_slow, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_model_with_pairwise_dropout_keeps_the_batch_matrix() -> None:
    """NeuMF's tower draws a dropout mask per (user, item) pair: in training it scores the
    full B x B matrix as before (each column its own mask); in eval it could share."""
    cfg = model_config({"name": "neumf", "factors": 4, "dropout": 0.2})
    model = build_model(cfg, 5, 5, torch.Generator().manual_seed(0))
    model.train()
    assert not model.distinct_cross
    model.eval()
    assert model.distinct_cross
    gmf = build_model(model_config({"name": "gmf", "factors": 4}), 5, 5)
    assert gmf.train().distinct_cross


def test_rows_dense_of_distinct_items_equals_the_columns_of_full_rows() -> None:
    """The grid of the batch's distinct items is built without the users' full dense rows."""
    inter, users, items = _batch(4, n_users=30, n_items=40, b=200)
    pos = TorchPositives(inter)
    uu, ii = users.unique(), items.unique()
    full = pos.rows_dense(uu)
    assert torch.equal(pos.rows_dense(uu, ii), full[:, ii])
    assert torch.equal(pos.contains(uu[:, None], ii[None, :]), full[:, ii])
    rev = ii.flip(0)  # not increasing: the column gather of the full rows
    assert torch.equal(pos.contains(uu[:, None], rev[None, :]), full[:, rev])


def test_rows_whose_hits_score_far_above_the_rest_stay_exact() -> None:
    """The row maximum is first taken over masked items too: a user whose other positives
    (masked) score 200 above its batch labels and the rest would underflow there (float32:
    exp(-200) is 0) and is redone over its unmasked items."""
    inter, users, items = _batch(5)
    pos = TorchPositives(inter)
    hits = pos.rows_dense(torch.arange(inter.n_users)).float()
    hits[users, items] = 0.0  # the labels stay low: only the other positives are far above
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(inter.n_users, inter.n_items, generator=gen) + 200.0 * hits
    table.requires_grad_(True)
    cross = lambda a, c: table[a][:, c]  # noqa: E731
    batch = InBatch(pos.contains)(users, items)
    assert bool((batch.grid & (hits[batch.uniq_u][:, batch.uniq_i] > 0)).any())
    fast = batch.distinct_rows(cross)
    target = torch.arange(users.numel())
    slow = F.cross_entropy(batch.logits(cross(users, items)), target, reduction="none")
    assert torch.allclose(fast, slow, rtol=1e-5, atol=1e-5) and bool((slow > 0.1).all())
    g_fast, g_slow = (torch.autograd.grad(r.sum(), table)[0] for r in (fast, slow))
    assert torch.allclose(g_fast, g_slow, rtol=1e-4, atol=1e-5)
