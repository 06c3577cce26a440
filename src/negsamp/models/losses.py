"""Losses for models trained on positives plus negatives (pure functions of scores).

Every loss is computed per positive (a row of the batch) and then averaged; with
``weight`` float [B] (e.g. recency weights of the positives) the average is
sum(w * loss) / sum(w). Scores: the positive's ``s_pos`` float [B], the negatives'
``s_neg`` float [B, K], or the full catalog's. Everything is in log-space (``logsigmoid``,
``softplus``, ``logsumexp``) and in float32, so fp16/bf16 autocast cannot overflow it.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

LOSSES = ("bpr", "bce", "sampled_softmax", "full_softmax")


def mean(rows: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Scalar: the mean of float [B] per-positive losses, weighted when ``weight`` is given."""
    if weight is None:
        return rows.mean()
    return (rows * weight).sum() / weight.sum().clamp_min(1e-12)


def bpr(s_pos: torch.Tensor, s_neg: torch.Tensor) -> torch.Tensor:
    """float [B]: pairwise BPR, the mean over a row's negatives of -log sigmoid(s_pos - s_neg)."""
    return -F.logsigmoid(s_pos.float().unsqueeze(1) - s_neg.float()).mean(1)


def bce(s_pos: torch.Tensor, s_neg: torch.Tensor) -> torch.Tensor:
    """float [B]: pointwise binary cross-entropy, the positive and each negative one instance
    (NCF): -[log sigmoid(s_pos) + sum_k log sigmoid(-s_neg_k)] / (1 + K)."""
    s_pos, s_neg = s_pos.float(), s_neg.float()
    return (F.softplus(-s_pos) + F.softplus(s_neg).sum(1)) / (1 + s_neg.shape[1])


def gbce_beta(n_neg: int, n_items: int, t: float) -> float:
    """gBCE's power on the positive probability (Petrov & Macdonald, RecSys 2023, eq. 9):
    beta = alpha * (t * (1 - 1/alpha) + 1/alpha), alpha = n_neg / (n_items - 1) the share of
    the catalog's negatives sampled; t = 0 gives beta = 1 (BCE), t = 1 gives beta = alpha."""
    alpha = n_neg / max(n_items - 1, 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def gbce(s_pos: torch.Tensor, s_neg: torch.Tensor, beta: float) -> torch.Tensor:
    """float [B]: generalized BCE, -[beta * log sigmoid(s_pos) + sum_k log sigmoid(-s_neg_k)]
    / (1 + K): BCE (:func:`bce`) with the positive's probability raised to ``beta``
    (:func:`gbce_beta`), which counters the overconfidence sampled negatives cause."""
    s_pos, s_neg = s_pos.float(), s_neg.float()
    return (beta * F.softplus(-s_pos) + F.softplus(s_neg).sum(1)) / (1 + s_neg.shape[1])


def sampled_softmax(
    s_pos: torch.Tensor, s_neg: torch.Tensor, log_q: torch.Tensor | None = None
) -> torch.Tensor:
    """float [B]: softmax cross-entropy of the positive against its K sampled negatives.

    With ``log_q`` float [B, K] (log-probability that the sampler draws each negative),
    each negative logit becomes ``s_neg - log(K * q)``: the importance-sampling estimate
    of the full-catalog normaliser, sum_j exp(s_j) ~ (1/K) sum_{j~q} exp(s_j) / q_j, so
    popularity-sampled negatives still estimate the full softmax without bias in Z.
    Without it the K negatives stand for the whole catalog unweighted.
    """
    s_pos, s_neg = s_pos.float(), s_neg.float()
    if log_q is not None:
        s_neg = s_neg - (log_q.float() + math.log(s_neg.shape[1]))
    logits = torch.cat([s_pos.unsqueeze(1), s_neg], dim=1)
    return torch.logsumexp(logits, dim=1) - s_pos


def full_softmax(s_all: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """float [B]: full-catalog softmax cross-entropy; s_all float [B, n_items], pos int64 [B]."""
    return F.cross_entropy(s_all.float(), pos, reduction="none")


def in_batch_softmax(logits: torch.Tensor) -> torch.Tensor:
    """float [B]: softmax over the batch's positives; logits float [B, B], row b's target is
    column b (accidental hits already at -inf, logQ already subtracted by the caller)."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits.float(), target, reduction="none")


def sampled(
    name: str, s_pos: torch.Tensor, s_neg: torch.Tensor, log_q: torch.Tensor | None = None
) -> torch.Tensor:
    """float [B]: the sampled loss ``name`` (``full_softmax`` needs every score: see the model)."""
    if name == "bpr":
        return bpr(s_pos, s_neg)
    if name == "bce":
        return bce(s_pos, s_neg)
    if name == "sampled_softmax":
        return sampled_softmax(s_pos, s_neg, log_q)
    raise ValueError(f"unknown loss {name!r}; known losses: {list(LOSSES)}")
