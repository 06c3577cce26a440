"""Dot products of gathered embedding rows without materialising the gathered rows.

Scoring a user against M items by ``(Q[items] * u).sum(-1)`` writes and reads a
[B, M, d] tensor four times in forward and backward; on a CPU that memory traffic is the
whole cost of a BPR step. :func:`sampled_dot` computes only the B * M scores as a sampled
dense-dense product (SDDMM, the (b, items[b, m]) entries of U_b Q^T) and its gradients as
two weighted ``embedding_bag`` sums (one over each user's items, one over each item's
users), nnz * d work each with no [B, M, d] intermediate: 10x to 30x faster than the
gather on CPU. On CUDA the plain gather is fast and is used instead.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.nn import functional as F


def csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: Any) -> torch.Tensor:
    """A sparse CSR tensor built without checks (the callers build valid ones) and without
    torch's "sparse CSR support is in beta" warning (these kernels are tested here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)


class _SampledDot(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, u: torch.Tensor, table: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:  # noqa: ANN401
        b, m = items.shape
        crow = torch.arange(0, b * m + 1, m, device=u.device)
        col = items.reshape(-1)
        ones = torch.ones(b * m, dtype=u.dtype, device=u.device)
        pattern = csr(crow, col, ones, (b, table.shape[0]))
        s = torch.sparse.sampled_addmm(pattern, u, table.T, beta=0.0).values()
        ctx.save_for_backward(u, table, col)
        ctx.m = m
        return s.view(b, m)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN401
        u, table, col = ctx.saved_tensors
        b, m, n = u.shape[0], ctx.m, table.shape[0]
        g = grad.reshape(-1).to(u.dtype)
        grad_u = grad_table = None
        if ctx.needs_input_grad[0]:  # row b: sum_m g[b, m] * table[items[b, m]]
            grad_u = F.embedding_bag(
                col.view(b, m), table, per_sample_weights=g.view(b, m), mode="sum"
            )
        if ctx.needs_input_grad[1]:  # item i: sum over its (b, m) of g[b, m] * u[b]
            order = torch.argsort(col, stable=True)
            offsets = torch.zeros(n, dtype=torch.int64, device=u.device)
            offsets[1:] = torch.bincount(col, minlength=n)[:-1].cumsum(0)
            rows = torch.div(order, m, rounding_mode="floor")
            grad_table = F.embedding_bag(rows, u, offsets, per_sample_weights=g[order], mode="sum")
        return grad_u, grad_table, None


def sampled_dot(u: torch.Tensor, table: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """float [B, M]: <u[b], table[items[b, m]]>.

    u: float [B, d] (the batch's user rows, already gathered); table: float [n, d] (every
    item's row); items: int64 [B, M]. Differentiable in ``u`` and ``table``.
    """
    if u.device.type != "cpu" or torch.is_autocast_enabled(u.device.type):
        return torch.bmm(table[items], u.unsqueeze(2)).squeeze(2)
    return _SampledDot.apply(u, table, items.contiguous())


_BLOCK = 1024  # elements each partial sum of :func:`ordered_sum` adds, in one thread
_SERIAL = 16_384  # below torch's parallel grain (32768): one thread sums the whole tensor


def ordered_sum(x: torch.Tensor) -> torch.Tensor:
    """Scalar sum of ``x`` whose float rounding does not depend on torch's thread count.

    ``x.sum()`` over more than 32768 elements splits the work by thread, so 1 and 2
    threads round differently; here blocks of 1024 are summed one per thread (a row
    reduction is split by rows, never inside one) until a short vector is left.
    """
    v = x.reshape(-1)
    while v.numel() > _SERIAL:
        pad = -v.numel() % _BLOCK
        if pad:
            v = torch.cat([v, v.new_zeros(pad)])
        v = v.view(-1, _BLOCK).sum(1)
    return v.sum()


def squared_rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Scalar sum over ``idx`` (int64, any shape, repeats counted) of |table[i]|^2.

    When the table has fewer rows than ``idx`` entries it is cheaper to weight each row's
    squared norm by its count than to gather the rows: same value, O(table) not O(idx * d).
    """
    if table.shape[0] <= idx.numel():
        counts = torch.bincount(idx.reshape(-1), minlength=table.shape[0]).to(table.dtype)
        return ordered_sum(counts * table.pow(2).sum(1))
    return ordered_sum(table[idx].pow(2).sum(-1))
