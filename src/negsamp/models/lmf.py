"""``lmf``: logistic matrix factorisation (Johnson 2014), pointwise on sampled negatives.

P(u likes i) = sigmoid(<p_u, q_i> + b_u + b_i), trained with binary cross-entropy on the
positives and their sampled negatives (``cfg.loss``, ``bce`` by default). The user bias
does not change a user's ranking; it absorbs user activity so the factors need not.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from negsamp.models import register_model
from negsamp.models.bpr import BPR


@register_model("lmf")
class LMF(BPR):
    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, n_users, n_items, generator=generator)
        self.ubias = nn.Embedding(n_users, 1)
        nn.init.zeros_(self.ubias.weight)

    def _score_reg(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s, reg = super()._score_reg(users, items)
        return s + self.ubias.weight[users], reg

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return super().score_all(users) + self.ubias.weight[users]

    def score_cross(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return super().score_cross(users, items) + self.ubias.weight[users]
