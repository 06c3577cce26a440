"""Batch-side negatives: pure torch functions on a training batch (CPU or CUDA).

They never see the model or the data loader, only tensors and a ``score(users, items)``
callable (as TensorFlow Recommenders' retrieval task separates them):

* ``in_batch``: :class:`InBatch` (:mod:`negsamp.samplers.in_batch`) gives a softmax of
  row ``i`` over the batch's positive items, masking accidental hits and subtracting
  ``log Q`` (Yi et al., RecSys 2019) with :func:`item_log_q`;
* ``hard``: :func:`hard_negatives` keeps the top-``k`` scored of a row's candidates (the
  base sampler's pool columns), or samples ``k`` by softmax(score / temperature);
* ``mixed``: :func:`mix_negatives` joins hard and random negatives, and :class:`ItemCap`
  caps one item's share of an epoch's negatives.

The exact torch draws and positive lookup live in :mod:`negsamp.samplers.torch_exact`,
the in_batch softmax in :mod:`negsamp.samplers.in_batch`; both are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from negsamp.samplers.in_batch import InBatch, InBatchRows, in_batch_logits, item_log_q
from negsamp.samplers.torch_exact import (
    TorchPositives,
    uniform_excluding_torch,
    weighted_excluding_torch,
)

__all__ = [
    "InBatch",
    "InBatchRows",
    "ItemCap",
    "TorchPositives",
    "hard_negatives",
    "in_batch_logits",
    "item_log_q",
    "mix_negatives",
    "uniform_excluding_torch",
    "weighted_excluding_torch",
]

Score = Callable[[Tensor, Tensor], Tensor]  # (users, items) same shape -> float scores


def hard_negatives(
    score: Score,
    users: Tensor,
    candidates: Tensor,
    k: int,
    temperature: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """int64 [B, k]: the hardest ``k`` of each row's candidates.

    candidates: int64 [B, C] (never positives: the base sampler's pool columns).
    temperature None: the top-``k`` by score (ties: torch.topk's order). Else ``k``
    distinct columns sampled without replacement with P proportional to
    softmax(score / temperature), by Gumbel top-k with ``generator`` (on the scores' device).
    Scoring runs under ``no_grad``: selection is not differentiated.
    """
    if not 1 <= k <= candidates.shape[1]:
        raise ValueError(f"k={k} must be in [1, candidates={candidates.shape[1]}]")
    with torch.no_grad():
        s = score(users[:, None].expand_as(candidates), candidates).float()
        if temperature is not None:
            u = torch.rand(s.shape, generator=generator, device=s.device)
            u = u.clamp_(torch.finfo(u.dtype).tiny, 1.0 - torch.finfo(u.dtype).eps)
            s = s / temperature - torch.log(-torch.log(u))
        idx = torch.topk(s, k, dim=1, sorted=True).indices
    return candidates.gather(1, idx)


def mix_negatives(hard: Tensor, random: Tensor) -> Tensor:
    """int64 [B, h + r]: hard negatives first, then random ones (exploration never stops)."""
    if hard.shape[0] != random.shape[0]:
        raise ValueError(f"batch sizes differ: {hard.shape[0]} hard vs {random.shape[0]} random")
    return torch.cat([hard, random.to(hard.dtype)], dim=1)


class ItemCap:
    """At most ``max_share`` of an epoch's negatives may be any one item.

    cap = max(1, floor(max_share * epoch_negatives)) uses per item per epoch. The first
    ``cap`` uses in batch order (row-major within a batch) are kept; later ones are
    replaced by ``redraw`` (the random base sampler, with the pool's exclusions) for up
    to ``rounds`` rounds; replacements still over the cap after that are kept and counted
    in ``overflow``.
    """

    def __init__(
        self,
        n_items: int,
        max_share: float,
        epoch_negatives: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cap = max(1, math.floor(max_share * epoch_negatives))
        self.used = torch.zeros(n_items, dtype=torch.long, device=device)
        self.replaced = 0
        self.overflow = 0

    def reset(self) -> None:
        """Start a new epoch."""
        self.used.zero_()

    def _over(self, flat: Tensor) -> Tensor:
        vals, perm = torch.sort(flat, stable=True)
        new = torch.ones_like(vals, dtype=torch.bool)
        new[1:] = vals[1:] != vals[:-1]
        starts = new.nonzero().squeeze(1)
        pos = torch.arange(flat.numel(), device=flat.device)
        rank = torch.empty_like(pos)
        rank[perm] = pos - starts[new.cumsum(0) - 1]
        return self.used[flat] + rank >= self.cap

    def apply(
        self,
        negs: Tensor,
        redraw: Callable[[Tensor, Tensor | None], Tensor],
        rounds: int = 3,
        distinct: bool = False,
    ) -> Tensor:
        """int64 [B, n]: ``negs`` with over-cap uses replaced, and the usage counted.

        redraw(rows int64 [m], taken int64 [m, n] | None) -> int64 [m]: fresh base
        negatives for those batch rows, none of them in its row of ``taken`` (-1: no item).
        distinct: rows hold distinct items (``replace: false``) and keep doing so: the
        over-cap cells are redrawn one column at a time, each avoiding the row's other
        items (kept ones and those already redrawn), i.e. successive sampling within the
        row as the pool drew it. Otherwise ``taken`` is None and all cells go at once.
        """
        b, n = negs.shape
        out = negs.reshape(-1).long().clone().view(b, n)
        for _ in range(rounds):
            over = self._over(out.view(-1)).view(b, n)
            if not distinct:
                r, c = over.nonzero(as_tuple=True)  # row-major: batch order
                if r.numel() == 0:
                    break
                out[r, c] = redraw(r, None).to(out.dtype)
                self.replaced += r.numel()
                continue
            cols = over.any(0).nonzero().squeeze(1).tolist()
            if not cols:
                break
            out.masked_fill_(over, -1)  # a cell being replaced holds no item yet
            for j in cols:
                r = over[:, j].nonzero().squeeze(1)
                out[r, j] = redraw(r, out[r]).to(out.dtype)
                self.replaced += r.numel()
        self.overflow += int(self._over(out.view(-1)).sum())
        self.used += torch.bincount(out.view(-1), minlength=self.used.numel())
        return out
