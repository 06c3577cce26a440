"""``ials``: implicit ALS / weighted matrix factorisation (Hu, Koren, Volinsky 2008).

The answer to the "zero problem" that needs no negative sampling: every unobserved cell
is a negative with weight 1, every observed cell a positive with confidence
c = 1 + alpha * count (the counts ingest keeps; the train stage multiplies them by the
recency weight of ``recency_boost``), and each half-step (users, then items)
is solved in closed form (:mod:`negsamp.models.als`). The sampler and the pool are not
used. score(u, i) = <x_u, y_i>.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from negsamp.interactions import Interactions
from negsamp.models import als, register_model
from negsamp.models.base import Scorer

log = logging.getLogger(__name__)


@register_model("ials")
class IALS(Scorer):
    trains_on_pool = False

    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.cfg, self.n_users, self.n_items = cfg, n_users, n_items
        self.user = nn.Parameter(torch.empty(n_users, cfg.factors), requires_grad=False)
        self.item = nn.Parameter(torch.empty(n_items, cfg.factors), requires_grad=False)
        with torch.no_grad():  # small positive factors, as implicit's ALS starts (HR@10 +0.002
            # over a zero-mean normal start on the synthetic bench: fewer sign-symmetric starts)
            self.user.uniform_(0.0, cfg.init_std, generator=generator)
            self.item.uniform_(0.0, cfg.init_std, generator=generator)
        self._sides: tuple[als.Side, als.Side] | None = None

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [B, M] -> float [B, M]."""
        return torch.bmm(self.item[items], self.user[users].unsqueeze(2)).squeeze(2)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """users int64 [B] -> float [B, n_items]."""
        return self.user[users] @ self.item.T

    def score_cross(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [M] -> float [B, M]."""
        return self.user[users] @ self.item[items].T

    def prepare(self, train: Interactions, device: torch.device) -> None:
        """Move to ``device`` and build both sides' CSR of the confidences (once per fit)."""
        if (train.n_users, train.n_items) != (self.n_users, self.n_items):
            raise ValueError(
                f"training positives are {train.n_users} x {train.n_items}, the model "
                f"{self.n_users} x {self.n_items}"
            )
        self.to(device)
        self._sides = als.sides(train, self.cfg.alpha, device)

    @torch.no_grad()
    def half_step(self, side: str) -> None:
        """Solve ``side`` ("user" or "item") in closed form with the other side fixed."""
        if self._sides is None:
            raise RuntimeError("call prepare(train, device) before fitting")
        users, items = self._sides
        x, y, csr = (
            (self.user, self.item, users) if side == "user" else (self.item, self.user, items)
        )
        c = self.cfg
        if c.solver == "cholesky":
            als.solve_cholesky(x.data, y.data, csr, c.reg)
        else:
            als.solve_cg(x.data, y.data, csr, c.reg, c.cg_steps)

    @torch.no_grad()
    def step(self) -> float:
        """One full iteration (users, then items); returns the weighted loss per observed cell."""
        self.half_step("user")
        self.half_step("item")
        return float(als.weighted_loss(self.user, self.item, self._sides[0], self.cfg.reg))
