"""The ``in_batch`` softmax: row ``i`` of a batch against every positive item of the batch.

Row ``i`` (user ``u_i``, positive ``p_i``) is a softmax over the batch's B columns, whose
label is column ``i``: column ``j`` holds ``score(u_i, p_j)``, minus ``log Q(p_j)`` when
the logQ correction is on (Yi et al., RecSys 2019); off the diagonal it is masked
(an accidental hit) when ``p_j`` is a positive of ``u_i`` or the item ``p_i`` again.

:meth:`InBatchRows.logits` builds that B x B matrix (the definition, and the path a model
with per-pair randomness takes). :meth:`InBatchRows.distinct_rows` gives the same loss
from a U x I matrix, U and I the batch's distinct users and items (issue #17; on
ML-100k a batch of 4096 holds about 810 users and 1,000 items, a 20x smaller matrix):

* columns with the same item hold the same logit in a row, so the softmax over the B
  columns is one over the I items with ``log(count)`` added to each item's logit;
* rows with the same user differ only in their label: every positive of ``u`` is masked
  in every row of ``u`` (its own item too, once each row's own item is a positive of
  its user, as batch positives from the training positives are), so a user's
  normaliser over the unmasked items ``lse_u`` is shared, and row ``i`` adds back its
  label's logit ``t_i`` once: loss_i = log(exp(lse_u) + exp(t_i)) - t_i, the B x B
  cross-entropy up to float summation order.

A row whose own item is not a positive of its user leaves the other columns of that item
unmasked for the user's other rows, so such a batch takes the B x B path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

IsPositive = Callable[[Tensor, Tensor], Tensor]  # (users, items) broadcast -> bool
Cross = Callable[[Tensor, Tensor], Tensor]  # users [U], items [I] -> float [U, I]


def item_log_q(
    item_counts: Tensor | np.ndarray, device: torch.device | str | None = None
) -> Tensor:
    """float32 [n_items]: log of the probability that a batch positive is item ``i``.

    Batches are drawn uniformly from the training positives, so P(i) = count_i / nnz (the
    constant log(batch size) of "appears in the batch" cancels in the softmax). Items with
    count 0 never appear as batch positives; they get log(1 / nnz) only to stay finite.
    """
    c = torch.as_tensor(
        np.asarray(item_counts) if not torch.is_tensor(item_counts) else item_counts
    )
    c = c.to(device=device or c.device, dtype=torch.float64)
    return (c.clamp_min(1.0) / c.sum().clamp_min(1.0)).log().float()


@dataclass(frozen=True)
class InBatch:
    """The in_batch task: the positives lookup and the logQ table, fixed for a run.

    is_positive(users, items) -> bool of their broadcast shape (e.g.
    ``TorchPositives.contains``); log_q: float [n_items] from :func:`item_log_q`, or None.
    """

    is_positive: IsPositive
    log_q: Tensor | None = None

    def __call__(self, users: Tensor, pos_items: Tensor) -> InBatchRows:
        """The batch's distinct users and items and their accidental hits (no autograd).

        users, pos_items: int64 [B] (row ``i``: user ``users[i]``, label ``pos_items[i]``).
        """
        with torch.no_grad():
            # look up (user, item) positives once per distinct pair of the batch, not B x B
            # times: a batch repeats users and (small catalogs) items, and each lookup is a
            # binary search over every training positive (or a dense row, see contains)
            uniq_u, u_at = torch.unique(users, return_inverse=True)
            uniq_i, i_at = torch.unique(pos_items, return_inverse=True)
            grid = self.is_positive(uniq_u[:, None], uniq_i[None, :])  # bool [U, I]
            own = bool(grid[u_at, i_at].all())
        return InBatchRows(users, pos_items, uniq_u, u_at, uniq_i, i_at, grid, own, self.log_q)


@dataclass(frozen=True)
class InBatchRows:
    """One batch of the in_batch softmax. uniq_u int64 [U], u_at int64 [B] (users ==
    uniq_u[u_at]); uniq_i int64 [I], i_at int64 [B]; grid bool [U, I]: is uniq_i[k] a
    positive of uniq_u[r]; own: every row's item is a positive of its user."""

    users: Tensor
    pos_items: Tensor
    uniq_u: Tensor
    u_at: Tensor
    uniq_i: Tensor
    i_at: Tensor
    grid: Tensor
    own: bool
    log_q: Tensor | None

    def logits(self, scores: Tensor) -> Tensor:
        """float [B, B]: logits of row ``i`` over the batch's positive items (label: the
        diagonal). scores: float [B, B], scores[i, j] = score(users[i], pos_items[j]).

        Off the diagonal, column ``j`` is -inf where ``pos_items[j]`` is a positive of
        ``users[i]`` or the item ``pos_items[i]``; ``log_q[pos_items[j]]`` is subtracted
        from every entry of column ``j`` (the diagonal too, as TFRS does).
        """
        b = scores.shape[0]
        if scores.shape != (b, b) or b != self.users.numel():
            raise ValueError(
                f"scores must be [B, B] with B={self.users.numel()}, got {tuple(scores.shape)}"
            )
        with torch.no_grad():
            # [U, B] (column j: the item of row j) by row gathers, then [B, B] by a row
            # gather: gathering columns of a [B, I] matrix is many times slower on CPU
            by_user = self.grid.t().contiguous().index_select(0, self.i_at).t().contiguous()
            hits = by_user.index_select(0, self.u_at)
            if not self.own:
                # a row whose own item is not a positive of its user: mask that item's
                # repeats explicitly (batch positives are training positives: not needed then)
                hits |= self.i_at[None, :] == self.i_at[:, None]
            hits.fill_diagonal_(False)
            # the mask and the logQ correction as one additive bias built without autograd:
            # the graph holds one add (whose backward passes the gradient through) instead
            # of a subtraction and a masked_fill that backward masks again; -inf + a finite
            # score is -inf, and the softmax gradient there is 0 either way: the same numbers
            if self.log_q is None:
                bias = torch.zeros((b, b), dtype=scores.dtype, device=scores.device)
            else:
                lq = -self.log_q[self.pos_items].to(scores.dtype)
                bias = lq[None, :].expand(b, b).clone()
            bias.masked_fill_(hits, float("-inf"))
        return scores + bias

    def distinct_rows(self, cross: Cross) -> Tensor:
        """float [B]: each row's softmax cross-entropy (the loss of :meth:`logits` with its
        diagonal label), scoring each distinct user against each distinct item once.

        cross(users [U], items [I]) -> float [U, I]: the model's ``score_cross``; it must
        give the same number for a (user, item) wherever it repeats (no dropout drawn per
        pair). Needs ``own`` (see the module docstring).
        """
        if not self.own:
            raise ValueError("distinct_rows needs every row's item to be its user's positive")
        s = cross(self.uniq_u, self.uniq_i)  # [U, I]; half precision (autocast) in float32
        s = s.to(torch.promote_types(s.dtype, torch.float32))
        with torch.no_grad():
            col = torch.bincount(self.i_at, minlength=self.uniq_i.numel()).to(s.dtype).log()
            if self.log_q is not None:
                col -= self.log_q[self.uniq_i].to(s.dtype)
        lse = _MaskedLogSumExp.apply(s, col, self.grid)  # [U]
        label = s[self.u_at, self.i_at]  # [B]: each row's own score
        if self.log_q is not None:
            label = label - self.log_q[self.pos_items].to(s.dtype)
        return torch.logaddexp(lse[self.u_at], label) - label


def in_batch_logits(
    scores: Tensor,
    users: Tensor,
    pos_items: Tensor,
    is_positive: IsPositive,
    log_q: Tensor | None = None,
) -> Tensor:
    """float [B, B]: :meth:`InBatchRows.logits` of one batch (the definition of the mask).

    scores: float [B, B], scores[i, j] = score(users[i], pos_items[j]); users, pos_items:
    int64 [B]; is_positive, log_q: as :class:`InBatch` takes them.
    """
    b = scores.shape[0]
    if scores.shape != (b, b):
        raise ValueError(f"scores must be [B, B], got {tuple(scores.shape)}")
    return InBatch(is_positive, log_q)(users, pos_items).logits(scores)


class _MaskedLogSumExp(torch.autograd.Function):
    """float [U]: log sum_k exp(s[r, k] + col[k]) over the k where ``mask[r, k]`` is False
    (-inf for a row with none: a user all of whose batch items are its positives).

    One exp pass over finite numbers (exp of -inf or of huge negatives is several times
    slower on CPU): the row maximum is taken over every item, masked ones too, so nothing
    overflows, and the masked terms are zeroed after exp. A row whose unmasked terms all
    lie far below that maximum (their sum under 1e-30, e.g. empty) is redone with the
    maximum over its unmasked items. The forward keeps the terms and their row sums; the
    backward scales them by grad / sum (the softmax times grad) instead of logsumexp's
    backward exponentiating the matrix again.
    """

    @staticmethod
    def forward(ctx, s: Tensor, col: Tensor, mask: Tensor) -> Tensor:  # noqa: ANN001
        x = s.detach() + col[None, :]
        m = x.amax(1, keepdim=True)
        e = (x - m).exp_().mul_(mask.logical_not().to(x.dtype))
        z = e.sum(1, keepdim=True)
        low = (z < 1e-30).squeeze(1)
        if bool(low.any()):
            xr = x[low].masked_fill_(mask[low], float("-inf"))
            mr = xr.amax(1, keepdim=True)
            mr.masked_fill_(torch.isneginf(mr), 0.0)  # nothing left: exp gives 0s
            e[low] = xr.sub_(mr).exp_()
            m[low], z[low] = mr, e[low].sum(1, keepdim=True)
        lse = z.log().add_(m).squeeze(1)
        ctx.save_for_backward(e, z.clamp_min_(torch.finfo(z.dtype).tiny))
        return lse

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # noqa: ANN001
        e, z = ctx.saved_tensors  # the softmax is e / z (0 where masked)
        return e * (grad[:, None] / z), None, None
