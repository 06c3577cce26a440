"""``bpr``: matrix factorisation trained with the pairwise BPR loss (Rendle et al. 2009).

score(u, i) = <p_u, q_i> + b_i. Each positive is compared with each of its sampled
negatives: loss = -mean(log sigmoid(s(u, i) - s(u, j))) + l2 * (batch embedding norms).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from negsamp.interactions import Interactions
from negsamp.models import register_model


@register_model("bpr")
class BPR(nn.Module):
    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.cfg, self.n_users, self.n_items = cfg, n_users, n_items
        self.user = nn.Embedding(n_users, cfg.factors)
        self.item = nn.Embedding(n_items, cfg.factors)
        self.bias = nn.Embedding(n_items, 1)
        with torch.no_grad():
            self.user.weight.normal_(0.0, cfg.init_std, generator=generator)
            self.item.weight.normal_(0.0, cfg.init_std, generator=generator)
            self.bias.weight.zero_()
        self.bias.weight.requires_grad_(cfg.item_bias)

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [B, M] -> float [B, M]."""
        u = self.user(users).unsqueeze(1)
        s = (u * self.item(items)).sum(-1)
        return s + self.bias(items).squeeze(-1) if self.cfg.item_bias else s

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """users int64 [B] -> float [B, n_items]."""
        s = self.user(users) @ self.item.weight.T
        return s + self.bias.weight.T if self.cfg.item_bias else s

    def loss(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, l2: float
    ) -> torch.Tensor:
        """users, pos int64 [B]; neg int64 [B, n_neg] -> scalar BPR loss with batch L2."""
        u, qi, qj = self.user(users), self.item(pos), self.item(neg)
        s_pos = (u * qi).sum(-1, keepdim=True)
        s_neg = (u.unsqueeze(1) * qj).sum(-1)
        if self.cfg.item_bias:
            s_pos = s_pos + self.bias(pos)
            s_neg = s_neg + self.bias(neg).squeeze(-1)
        bpr = -F.logsigmoid(s_pos - s_neg).mean()
        reg = (u.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum() / neg.shape[1]) / users.shape[0]
        return bpr + l2 * reg

    @torch.no_grad()
    def recommend(
        self, users: np.ndarray, k: int, exclude: Interactions | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per user: (int32 [B, k] items, float32 [B, k] scores), seen items excluded."""
        from negsamp.evaluate import dense_mask

        dev = self.user.weight.device
        u = torch.as_tensor(np.asarray(users, np.int64), device=dev)
        s = self.score_all(u).float()
        if exclude is not None:
            s.masked_fill_(dense_mask(exclude, np.asarray(users), dev), float("-inf"))
        top = torch.topk(s, min(k, self.n_items), dim=1)
        return top.indices.int().cpu().numpy(), top.values.cpu().numpy()
