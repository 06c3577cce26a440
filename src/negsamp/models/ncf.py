"""``gmf``, ``mlp``, ``neumf``: neural collaborative filtering (He et al. 2017).

GMF scores h_g . (p_u * q_i); MLP feeds [p_u, q_i] through a ReLU tower and scores
h_m . tower; NeuMF keeps separate GMF and MLP embeddings and joins both with one output
layer [h_g, h_m], optionally initialised from a pretrained GMF and MLP as the paper does
(output layer = [alpha * h_g, (1 - alpha) * h_m]). All three train pointwise (``bce``).

The tower's first layer W [p; q] is applied as W_u p + W_i q, so scoring B users against
M items costs one (B + M) x h matrix product before the broadcast, not B * M of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from negsamp.models import register_model
from negsamp.models.base import SampledModel, SeededDropout
from negsamp.models.fused import sampled_dot, squared_rows


def _embedding(n: int, d: int, std: float, generator: torch.Generator | None) -> nn.Embedding:
    e = nn.Embedding(n, d)
    with torch.no_grad():
        e.weight.normal_(0.0, std, generator=generator)
    return e


class _NCF(SampledModel):
    gmf = mlp = False

    def __init__(
        self, cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.cfg, self.n_users, self.n_items = cfg, n_users, n_items
        width = 0
        if self.gmf:
            self.gmf_user = _embedding(n_users, cfg.factors, cfg.init_std, generator)
            self.gmf_item = _embedding(n_items, cfg.factors, cfg.init_std, generator)
            width += cfg.factors
        if self.mlp:
            f = getattr(cfg, "mlp_factors", cfg.factors)
            self.mlp_user = _embedding(n_users, f, cfg.init_std, generator)
            self.mlp_item = _embedding(n_items, f, cfg.init_std, generator)
            self.first = nn.Linear(2 * f, cfg.layers[0])
            # dropout masks from the trainer's generator (set_dropout_generator), not the global one
            hidden: list[nn.Module] = [nn.ReLU(), SeededDropout(cfg.dropout)]
            for a, b in zip(cfg.layers[:-1], cfg.layers[1:], strict=True):
                hidden += [nn.Linear(a, b), nn.ReLU(), SeededDropout(cfg.dropout)]
            self.hidden = nn.Sequential(*hidden)
            width += cfg.layers[-1]
        self.out = nn.Linear(width, 1)
        with torch.no_grad():  # LeCun-uniform layers, drawn from the seeded generator
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    bound = m.in_features**-0.5
                    m.weight.uniform_(-bound, bound, generator=generator)
                    m.bias.zero_()

    @property
    def distinct_cross(self) -> bool:
        """False while the tower's dropout draws a mask per (user, item) pair in training:
        in_batch then scores the full [B, B] matrix, each column its own mask, as before."""
        return not (self.mlp and self.training and self.cfg.dropout > 0)

    def _scores(
        self, users: torch.Tensor, items: torch.Tensor, cross: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """users int64 [B]; items int64 [B, M] (or [M] when ``cross``) -> (float [B, M], reg)."""
        s = self.out.bias
        reg = torch.zeros((), device=users.device)
        if self.gmf:
            hg = self.out.weight[0, : self.gmf_user.embedding_dim]
            uh = self.gmf_user(users) * hg
            table = self.gmf_item.weight
            s = s + (uh @ table[items].T if cross else sampled_dot(uh, table, items))
            reg = reg + squared_rows(self.gmf_user.weight, users)
            reg = reg + squared_rows(table, items)
        if self.mlp:
            hm = self.out.weight[0, -self.cfg.layers[-1] :]
            u, q = self.mlp_user(users), self.mlp_item(items)
            f = u.shape[1]
            w = self.first.weight
            a = u @ w[:, :f].T + self.first.bias  # [B, h0]
            b = q @ w[:, f:].T  # [B, M, h0] or [M, h0]
            x = a.unsqueeze(1) + (b.unsqueeze(0) if cross else b)
            s = s + self.hidden(x) @ hm
            reg = reg + squared_rows(self.mlp_user.weight, users)
            reg = reg + squared_rows(self.mlp_item.weight, items)
        return s, reg

    def _score_reg(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._scores(users, items, cross=False)

    def score_cross(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._scores(users, items, cross=True)[0]


@register_model("gmf")
class GMF(_NCF):
    gmf = True


@register_model("mlp")
class MLP(_NCF):
    mlp = True


@register_model("neumf")
class NeuMF(_NCF):
    gmf = mlp = True

    def pretrained_dirs(self) -> list[Path]:
        """The saved GMF and MLP folders to start from (empty: train from scratch)."""
        c = self.cfg
        return [Path(c.pretrained_gmf), Path(c.pretrained_mlp)] if c.pretrained_gmf else []

    @torch.no_grad()
    def init_from(self, gmf: GMF, mlp: MLP) -> None:
        """Copy the pretrained embeddings and tower; blend the output layers with alpha."""
        for part, want in ((gmf, "gmf"), (mlp, "mlp")):
            if part.cfg.name != want:
                raise ValueError(f"pretrained_{want} is a {part.cfg.name!r} model, not {want!r}")
            if (part.n_users, part.n_items) != (self.n_users, self.n_items):
                raise ValueError(
                    f"pretrained {want} has {part.n_users} users x {part.n_items} items, this "
                    f"data {self.n_users} x {self.n_items}: pretrain on the same split"
                )
        c = self.cfg
        if gmf.cfg.factors != c.factors:
            raise ValueError(f"pretrained gmf has factors={gmf.cfg.factors}; set factors to it")
        if (mlp.cfg.factors, tuple(mlp.cfg.layers)) != (c.mlp_factors, tuple(c.layers)):
            raise ValueError(
                f"pretrained mlp has factors={mlp.cfg.factors}, layers={list(mlp.cfg.layers)}; "
                "set mlp_factors and layers to match"
            )
        own = self.state_dict()
        for key, val in gmf.state_dict().items():
            if key.startswith("gmf_"):
                own[key].copy_(val)
        for key, val in mlp.state_dict().items():
            if key.startswith(("mlp_", "first", "hidden")):
                own[key].copy_(val)
        a = c.alpha
        self.out.weight.copy_(torch.cat([a * gmf.out.weight, (1 - a) * mlp.out.weight], dim=1))
        self.out.bias.copy_(a * gmf.out.bias + (1 - a) * mlp.out.bias)
