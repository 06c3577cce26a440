"""``bpr``: matrix factorisation trained with the pairwise BPR loss (Rendle et al. 2009).

score(u, i) = <p_u, q_i> + b_i. Each positive is compared with each of its sampled
negatives: loss = -mean(log sigmoid(s(u, i) - s(u, j))) + l2 * (batch embedding norms) / B.
The class is the matrix-factorisation scorer other MF models (``lmf``) build on; its
loss is ``cfg.loss`` (``bpr`` by default, any of :data:`negsamp.models.losses.LOSSES`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from negsamp.models import register_model
from negsamp.models.base import SampledModel
from negsamp.models.fused import sampled_dot, squared_rows


@register_model("bpr")
class BPR(SampledModel):
    thread_invariant = True  # gathers, SDDMM, embedding_bag, ordered sums (test_threads.py)

    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.cfg, self.n_users, self.n_items = cfg, n_users, n_items
        self.item_bias = getattr(cfg, "item_bias", True)
        self.user = nn.Embedding(n_users, cfg.factors)
        self.item = nn.Embedding(n_items, cfg.factors)
        self.bias = nn.Embedding(n_items, 1)
        with torch.no_grad():
            self.user.weight.normal_(0.0, cfg.init_std, generator=generator)
            self.item.weight.normal_(0.0, cfg.init_std, generator=generator)
            self.bias.weight.zero_()
        self.bias.weight.requires_grad_(self.item_bias)

    def _score_reg(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """users int64 [B]; items int64 [B, M] -> (float [B, M], scalar)."""
        u = self.user(users)  # [B, d]
        table = self.item.weight
        if self.item_bias:  # the bias rides in the dot product: <[u, 1], [q_i, b_i]>
            u = torch.cat([u, u.new_ones(u.shape[0], 1)], dim=1)
            table = torch.cat([table, self.bias.weight], dim=1)
        s = sampled_dot(u, table, items)
        return s, squared_rows(self.user.weight, users) + squared_rows(self.item.weight, items)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """users int64 [B] -> float [B, n_items]."""
        s = self.user(users) @ self.item.weight.T
        return s + self.bias.weight.T if self.item_bias else s

    def score_cross(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [M] -> float [B, M]."""
        s = self.user(users) @ self.item(items).T
        return s + self.bias.weight[items, 0] if self.item_bias else s
