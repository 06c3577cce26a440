"""What the models the gradient trainer fits have in common: losses, ranking, recommend.

A subclass implements ``_score_reg(users, items)`` (scores and the squared norm of the
embedding rows it read, from one gather) and ``score_all(users)``; it may override
``score_cross`` where every user against the same items is cheaper than ``score``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from negsamp.interactions import Interactions
from negsamp.models import losses

if TYPE_CHECKING:
    from negsamp.samplers.in_batch import InBatch


class SeededDropout(nn.Module):
    """``nn.Dropout`` whose masks come from ``generator`` (the trainer's ``DROPOUT`` stream,
    on the input's device) instead of torch's global generator, so a run's draws are its
    own and its checkpoint holds them. In training each element is kept with probability
    1 - p and scaled by 1 / (1 - p); in eval (or p = 0) it is the identity. With no
    generator set, torch's default generator is used."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p={p} must lie in [0, 1)")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float [..., d] -> the same shape and dtype."""
        if not self.training or self.p == 0.0:
            return x
        # the mask scaled first, then applied: torch's own CPU dropout, the same bytes
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep.div_(1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Scorer(nn.Module):
    """Ranking and ``recommend`` for any model that scores (user, item) pairs."""

    cfg: Any
    n_users: int
    n_items: int
    trains_on_pool = True
    # True when a CPU training step gives the same bytes at any torch thread count (no
    # reduction torch splits by thread): the trainer may then switch counts mid-run
    # (negsamp.threads.ThreadGovernor). Dense layers (NCF) sum over the batch in BLAS: False.
    thread_invariant = False
    # True when training's score_cross gives one number per (user, item), wherever the pair
    # repeats (no dropout drawn per pair): in_batch may then score each distinct user and
    # item of a batch once (InBatchRows.distinct_rows), the same loss from a smaller matrix
    distinct_cross = True

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [B, M] -> float [B, M]."""
        raise NotImplementedError

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """users int64 [B] -> float [B, n_items]."""
        return self.score_cross(users, torch.arange(self.n_items, device=users.device))

    def score_cross(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [M] -> float [B, M]: every user against every item."""
        return self.score(users, items.unsqueeze(0).expand(users.shape[0], -1))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_dropout_generator(self, generator: torch.Generator | None) -> None:
        """Draw every dropout mask of this model from ``generator`` (None: torch's default);
        the trainer hands it the ``DROPOUT`` stream. A model without dropout ignores it."""
        for m in self.modules():
            if isinstance(m, SeededDropout):
                m.generator = generator

    @torch.no_grad()
    def recommend(
        self, users: np.ndarray, k: int, exclude: Interactions | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per user: (int32 [B, k] items, float32 [B, k] scores), ``exclude``'s
        items (the user's seen ones) never returned; with fewer than k left, the tail of a
        row is padded with -inf scores and must be ignored."""
        from negsamp.evaluate import dense_mask

        dev = self.device
        u = torch.as_tensor(np.asarray(users, np.int64), device=dev)
        s = self.score_all(u).float()
        if exclude is not None:
            s.masked_fill_(dense_mask(exclude, np.asarray(users), dev), float("-inf"))
        top = torch.topk(s, min(k, self.n_items), dim=1)
        return top.indices.int().cpu().numpy(), top.values.cpu().numpy()


class SampledModel(Scorer):
    """A model trained on positives plus negatives with one of :data:`losses.LOSSES`."""

    def _score_reg(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """users int64 [B]; items int64 [B, M] -> (float [B, M] scores, scalar sum of the
        squares of every embedding row read)."""
        raise NotImplementedError

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._score_reg(users, items)[0]

    def loss(
        self,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        l2: float,
        log_q: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scalar training loss of a batch: ``cfg.loss`` averaged over the positives
        (weighted by ``weight`` float [B] when given) + l2 * (squared norm of the batch's
        embedding rows) / B.

        users, pos int64 [B]; neg int64 [B, K]; log_q float [B, K]: sampling log-probability
        of each negative (sampled_softmax's logQ correction).
        """
        b = users.shape[0]
        if self.cfg.loss == "full_softmax":
            _, reg = self._score_reg(users, pos.unsqueeze(1))
            rows = losses.full_softmax(self.score_all(users), pos)
        else:
            s, reg = self._score_reg(users, torch.cat([pos.unsqueeze(1), neg], dim=1))
            rows = losses.sampled(self.cfg.loss, s[:, 0], s[:, 1:], log_q)
        return losses.mean(rows, weight) + l2 * reg / b

    def in_batch_loss(
        self,
        users: torch.Tensor,
        pos: torch.Tensor,
        l2: float,
        task: InBatch,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Softmax of each row over the batch's positives (``task``: hits masked, logQ
        subtracted). A model whose ``score_cross`` repeats its numbers (``distinct_cross``)
        scores the batch's distinct users x distinct items once; otherwise (or when a row's
        own item is not its user's positive) the full [B, B] matrix: the same loss."""
        _, reg = self._score_reg(users, pos.unsqueeze(1))
        batch = task(users, pos)
        if self.distinct_cross and batch.own:
            rows = batch.distinct_rows(self.score_cross)
        else:
            rows = losses.in_batch_softmax(batch.logits(self.score_cross(users, pos)))
        return losses.mean(rows, weight) + l2 * reg / users.shape[0]
