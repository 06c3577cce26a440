"""Sequential models: ``sasrec`` (Kang & McAuley, ICDM 2018) and ``gru4rec``.

``sasrec``: self-attentive sequential recommendation.

A user is their chronological item sequence: item embeddings plus learned positions go
through ``num_blocks`` pre-norm blocks of causal self-attention and a feed-forward layer,
and the output at position t scores the item at t + 1 by a dot product with the (shared)
item embeddings. Sequences are right-aligned in ``max_len`` columns, padded on the left
with the id ``n_items``; a position attends to itself and to earlier, non-padding ones.

The model keeps each user's latest ``max_len`` items in the ``history`` buffer (saved with
the weights), so ``score(users, items)`` and ``score_all(users)`` answer for user ids like
every other model: scores come from the last position of the user's history. The trainer
(:mod:`negsamp.sequential`) sets the history to the training sequence while it validates
and to training + validation item before the model is saved (the test item follows it).
``score_sequences`` scores any given histories (what serving answers a request with).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from negsamp.models import register_model
from negsamp.models.base import Scorer, SeededDropout


class _Block(nn.Module):
    """Pre-norm causal self-attention + position-wise feed-forward, both residual."""

    def __init__(self, d: int, heads: int, p: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, d), nn.Linear(d, d)
        self.drop = SeededDropout(p)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x float [B, L, d]; allowed bool [B, 1, L, L] (query x key) -> float [B, L, d]."""
        b, n, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))


class SequenceModel(Scorer):
    """What the sequential models share: the ``history`` buffer of each user's latest
    ``max_len`` items, tied item embeddings (row ``n_items`` the padding), scoring from the
    last position. A subclass builds its encoder in ``__init__`` and implements ``encode``."""

    trains_on_pool = False  # negatives are drawn per position by negsamp.sequential
    sequential = True

    def __init__(self, cfg: Any, n_users: int, n_items: int) -> None:
        super().__init__()
        self.cfg, self.n_users, self.n_items = cfg, n_users, n_items
        self.pad = n_items
        self.item = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=n_items)
        self.drop = SeededDropout(cfg.dropout)
        self.register_buffer("history", torch.full((n_users, cfg.max_len), n_items))

    def _init_weights(self, generator: torch.Generator | None) -> None:
        """Matrices normal(0, init_std) from ``generator``; biases 0; norms 1 / 0; pad row 0."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    p.normal_(0.0, self.cfg.init_std, generator=generator)
                elif "bias" in name and "ln" not in name and "norm" not in name:
                    p.zero_()
            self.item.weight[self.n_items].zero_()

    def set_history(self, history: torch.Tensor) -> None:
        """history int64 [n_users, max_len]: each user's latest items, right-aligned, padded
        on the left with ``n_items`` (:func:`negsamp.sequences.histories`)."""
        if tuple(history.shape) != tuple(self.history.shape):
            raise ValueError(
                f"history is {tuple(history.shape)}, the model keeps {tuple(self.history.shape)}"
            )
        self.history.copy_(history.to(self.history.device))

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """seq int64 [B, L] (L <= max_len, right-aligned, ``n_items`` pads) -> float [B, L, d]:
        position t's output depends on seq[:, :t + 1] only (causal)."""
        raise NotImplementedError

    def last(self, seq: torch.Tensor) -> torch.Tensor:
        """seq int64 [B, L] -> float [B, d]: the output at the last position."""
        return self.encode(seq)[:, -1]

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """float [..., d]: the output embeddings of ``items`` (None: the whole catalog)."""
        w = self.item.weight
        return w[: self.n_items] if items is None else w[items]

    def score_sequences(self, seq: torch.Tensor) -> torch.Tensor:
        """seq int64 [B, L] -> float [B, n_items]: next-item scores after each history."""
        return self.last(seq) @ self.item_vectors().T

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [B, M] -> float [B, M]."""
        h = self.last(self.history[users])
        return torch.bmm(self.item_vectors(items), h.unsqueeze(2)).squeeze(2)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """users int64 [B] -> float [B, n_items]."""
        return self.score_sequences(self.history[users])

    def score_cross(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [M] -> float [B, M]."""
        return self.last(self.history[users]) @ self.item_vectors(items).T


@register_model("sasrec")
class SASRec(SequenceModel):
    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, n_users, n_items)
        d = cfg.hidden
        self.pos = nn.Embedding(cfg.max_len, d)
        self.blocks = nn.ModuleList(
            _Block(d, cfg.num_heads, cfg.dropout) for _ in range(cfg.num_blocks)
        )
        self.norm = nn.LayerNorm(d)
        self._init_weights(generator)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        n = seq.shape[1]
        keep = seq != self.pad
        x = self.item(seq) * math.sqrt(self.cfg.hidden) + self.pos.weight[-n:]
        x = self.drop(x) * keep[..., None]
        eye = torch.eye(n, dtype=torch.bool, device=seq.device)
        allowed = torch.tril(torch.ones(n, n, dtype=torch.bool, device=seq.device))
        # a padding position attends to itself only, so no row of the softmax is empty
        allowed = (allowed & keep[:, None, :]) | eye
        for block in self.blocks:
            x = block(x, allowed.unsqueeze(1)) * keep[..., None]
        return self.norm(x)


@register_model("gru4rec")
class GRU4Rec(SequenceModel):
    """GRU4Rec (Hidasi et al. 2016) as Hidasi & Czapp (2023) and the SASRec papers train it:
    a GRU over the item embeddings, the next item scored at every position, with SASRec's
    trainer, losses and negatives. Causal by construction; the padding steps (embedding 0)
    come first, so the state starts from what they leave (a constant for every user)."""

    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, n_users, n_items)
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, cfg.num_layers, batch_first=True)
        self._init_weights(generator)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.item(seq))
        return self.drop(self.gru(x)[0])
