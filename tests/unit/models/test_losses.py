"""The losses on cases small enough to compute by hand."""

from __future__ import annotations

import math

import pytest
import torch

from negsamp.models import losses

S_POS = torch.tensor([1.0])
S_NEG = torch.tensor([[0.5, -1.0]])


def test_bpr_is_the_mean_pairwise_log_loss() -> None:
    want = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(-2.0))) / 2
    assert losses.bpr(S_POS, S_NEG).item() == pytest.approx(want, rel=1e-6)


def test_bce_counts_the_positive_and_each_negative_once() -> None:
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731 - softplus
    want = (sp(-1.0) + sp(0.5) + sp(-1.0)) / 3
    assert losses.bce(S_POS, S_NEG).item() == pytest.approx(want, rel=1e-6)


def test_sampled_softmax_with_logq_matches_a_hand_computation() -> None:
    q = torch.tensor([[0.25, 0.5]])  # the sampler's probabilities of the two negatives
    # negatives become s - log(K q): 0.5 - log(0.5) and -1 - log(1.0)
    logits = [1.0, 0.5 - math.log(2 * 0.25), -1.0 - math.log(2 * 0.5)]
    want = math.log(sum(math.exp(x) for x in logits)) - 1.0
    got = losses.sampled_softmax(S_POS, S_NEG, q.log()).item()
    assert got == pytest.approx(want, rel=1e-6)
    plain = math.log(math.exp(1.0) + math.exp(0.5) + math.exp(-1.0)) - 1.0
    assert losses.sampled_softmax(S_POS, S_NEG).item() == pytest.approx(plain, rel=1e-6)


def test_logq_makes_the_sampled_normaliser_unbiased_for_the_full_one() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.tensor([2.0, 1.0, 0.5, -0.5, -1.0, 0.0])  # item 0 is the positive
    q = torch.tensor([0.0, 0.4, 0.3, 0.15, 0.1, 0.05])  # the sampler never draws it
    k, draws = 4, 100_000
    negs = torch.multinomial(q, draws * k, replacement=True, generator=g).view(draws, k)
    s_pos = scores[0].expand(draws)
    per_draw = losses.sampled_softmax(s_pos, scores[negs], q[negs].log())
    z_hat = torch.exp(per_draw + s_pos).mean()  # E[exp(logsumexp)] = the estimated Z
    assert z_hat.item() == pytest.approx(torch.exp(scores).sum().item(), rel=0.01)


def test_full_softmax_is_cross_entropy_over_the_catalog() -> None:
    s = torch.tensor([[2.0, 1.0, 0.0]])
    want = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + 1))
    assert losses.full_softmax(s, torch.tensor([0])).item() == pytest.approx(want, rel=1e-6)


def test_in_batch_softmax_targets_the_diagonal_and_skips_masked_hits() -> None:
    logits = torch.tensor([[1.0, float("-inf")], [0.0, 2.0]])
    rows = losses.in_batch_softmax(logits)
    assert rows[0].item() == pytest.approx(0.0, abs=1e-7)  # the only unmasked column
    assert rows[1].item() == pytest.approx(math.log(1 + math.exp(-2.0)), rel=1e-6)


def test_weighted_mean() -> None:
    rows, w = torch.tensor([1.0, 3.0]), torch.tensor([1.0, 3.0])
    assert losses.mean(rows).item() == 2.0
    assert losses.mean(rows, w).item() == pytest.approx(2.5)


def test_unknown_loss_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="bpr.*bce.*sampled_softmax"):
        losses.sampled("hinge", S_POS, S_NEG)
