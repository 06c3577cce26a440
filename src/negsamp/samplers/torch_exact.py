"""Exact negative draws in torch (CPU or CUDA), mirroring :mod:`negsamp.samplers.exact`.

For on-the-fly negatives in the trainer and for GPU speed. Pools are still written by the
numpy samplers on CPU (their bytes are the reference); torch draws come from a
``torch.Generator`` and are reproducible per device, not across devices.

* :class:`TorchPositives` holds the sorted keys ``u * n_items + i`` on the device:
  membership is one ``torch.searchsorted``;
* :func:`uniform_excluding_torch` maps a uniform rank over the user's non-positives to
  an item with the "skip the positives below" keys (no rejection at all);
* :func:`weighted_excluding_torch` draws by inverse CDF, rejects positives for a few
  rounds, then bisects the user's cumulative non-positive weight for what is left.

Both take an optional ``taken`` [B, t]: items row ``b`` must also avoid (the row's other
negatives, for draws without replacement), removed from the candidate set exactly as the
positives are, so the draw is the same distribution restricted to the free items.
"""

from __future__ import annotations

import numpy as np
import torch

from negsamp.interactions import Interactions
from negsamp.samplers.exact import SamplingError

DENSE_CELLS = 1 << 26  # booleans (64 MiB) a dense lookup of an outer product may use


class TorchPositives:
    """The positives of an :class:`Interactions` on ``device``.

    keys: int64 [nnz] sorted u * n_items + i; skip: int64 [nnz] u * (n_items + 1) + p_k - k;
    indptr: int64 [n_users + 1].
    """

    def __init__(self, inter: Interactions, device: torch.device | str = "cpu") -> None:
        self.n_users, self.n_items, self.device = inter.n_users, inter.n_items, torch.device(device)
        deg = inter.user_degrees()
        k = np.arange(inter.nnz, dtype=np.int64) - np.repeat(inter.indptr[:-1], deg)
        skip = inter.rows().astype(np.int64) * (inter.n_items + 1) + inter.indices - k
        self.keys = torch.as_tensor(inter._keys, device=self.device)
        self.skip = torch.as_tensor(skip, device=self.device)
        self.indptr = torch.as_tensor(inter.indptr, device=self.device)
        self.indices = torch.as_tensor(inter.indices.astype(np.int64), device=self.device)
        self._pos_w: tuple[int, torch.Tensor] | None = None

    @property
    def nnz(self) -> int:
        return int(self.keys.numel())

    def degrees(self, users: torch.Tensor) -> torch.Tensor:
        """int64, shape of ``users``: positives per user."""
        return self.indptr[users + 1] - self.indptr[users]

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """bool, broadcast shape of (users, items): is (u, i) a positive?

        An outer product (users [U, 1], items [1, I]) whose users' rows fit in
        ``DENSE_CELLS`` booleans is answered from those rows scattered densely (one pass
        over the users' positives) instead of U x I binary searches over all positives.
        """
        if (
            users.dim() == 2
            and items.dim() == 2
            and users.shape[1] == 1
            and items.shape[0] == 1
            and users.shape[0] * self.n_items <= DENSE_CELLS
        ):
            cols = items[0].long()
            if cols.numel() > 1 and bool((cols[1:] > cols[:-1]).all()):
                return self.rows_dense(users[:, 0].long(), cols)  # distinct items: no gather
            return self.rows_dense(users[:, 0].long())[:, cols]
        q = users.long() * self.n_items + items.long()
        if self.nnz == 0:
            return torch.zeros(q.shape, dtype=torch.bool, device=q.device)
        at = torch.searchsorted(self.keys, q).clamp_max_(self.nnz - 1)
        return self.keys[at] == q

    def rows_dense(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """bool [len(users), n_items]: each user's positives as a dense row; with ``items``
        (distinct int64 [I]) only those columns, [len(users), I], without the full rows."""
        deg = self.degrees(users)
        firsts = torch.cumsum(deg, 0) - deg  # where each user's run starts in the flat list
        at = torch.repeat_interleave(self.indptr[users] - firsts, deg)
        at += torch.arange(int(deg.sum()), device=self.device)
        rows = torch.repeat_interleave(torch.arange(users.numel(), device=self.device), deg)
        cols = self.indices[at]
        if items is None:
            out = torch.zeros(users.numel(), self.n_items, dtype=torch.bool, device=self.device)
            out[rows, cols] = True
            return out
        # item -> its column, and one spare column (dropped) for the items not asked for
        width = items.numel()
        where = torch.full((self.n_items,), width, dtype=torch.long, device=self.device)
        where[items] = torch.arange(width, device=self.device)
        out = torch.zeros(users.numel(), width + 1, dtype=torch.bool, device=self.device)
        out[rows, where[cols]] = True
        return out[:, :width]

    def positive_weight(self, weights: torch.Tensor) -> torch.Tensor:
        """float64 [nnz + 1]: cumulative ``weights`` over the stored positives (cached)."""
        if self._pos_w is None or self._pos_w[0] != id(weights):
            zero = torch.zeros(1, dtype=torch.float64, device=self.device)
            self._pos_w = (id(weights), torch.cat([zero, weights[self.indices].cumsum(0)]))
        return self._pos_w[1]


def _taken_items(pos: TorchPositives, users: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
    """int64 [B, t]: each row's distinct ``taken`` items that are not its user's positives,
    ascending, then padding ``n_items`` (entries < 0 or >= n_items are padding on input)."""
    n = pos.n_items
    t = taken.to(pos.device).long()
    bad = (t < 0) | (t >= n)
    bad |= pos.contains(users[:, None].expand_as(t), t.clamp(0, n - 1))
    s = torch.where(bad, n, t).sort(dim=1).values
    dup = torch.zeros_like(bad)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    return torch.where(dup, n, s).sort(dim=1).values


def uniform_excluding_torch(
    pos: TorchPositives,
    users: torch.Tensor,
    n_neg: int,
    generator: torch.Generator | None = None,
    taken: torch.Tensor | None = None,
) -> torch.Tensor:
    """int64 [B, n_neg] on ``pos.device``: uniform over each user's non-positives, with replacement.

    taken: int64 [B, t] or None; row ``b`` also avoids ``taken[b]`` (negative entries are
    free slots), drawing uniformly over its user's non-positives that are not taken.
    """
    users = users.to(pos.device).long()
    avail = pos.n_items - pos.degrees(users)
    s = None if taken is None else _taken_items(pos, users, taken)
    if s is not None:
        avail = avail - (s < pos.n_items).sum(1)
    if bool((avail < 1).any()):
        u = int(users[avail < 1][0])
        what = "every item" if taken is None else "every item not already in its row"
        raise SamplingError(f"user {u} has interacted with {what}: no negative exists")
    f = torch.rand(
        (users.numel(), n_neg), generator=generator, device=pos.device, dtype=torch.float64
    )
    ranks = (f * avail[:, None]).long()  # among the free non-positives
    if s is not None and s.shape[1]:
        # the taken items' ranks among the non-positives, minus their order k: the r-th free
        # non-positive is the (r + #{k: rank_k - k <= r})-th non-positive
        below = torch.searchsorted(pos.keys, users[:, None] * pos.n_items + s)
        key = s - (below - pos.indptr[users][:, None]) - torch.arange(s.shape[1], device=s.device)
        key = torch.where(s < pos.n_items, key, torch.iinfo(torch.int64).max)
        ranks = ranks + (key[:, None, :] <= ranks[:, :, None]).sum(-1)
    q = users[:, None] * (pos.n_items + 1) + ranks
    below = torch.searchsorted(pos.skip, q, right=True) - pos.indptr[users][:, None]
    return ranks + below


def weighted_excluding_torch(
    pos: TorchPositives,
    users: torch.Tensor,
    n_neg: int,
    weights: torch.Tensor,
    generator: torch.Generator | None = None,
    rounds: int = 8,
    taken: torch.Tensor | None = None,
) -> torch.Tensor:
    """int64 [B, n_neg]: P(i | u) proportional to ``weights[i]`` over u's non-positives.

    weights: float64 [n_items] >= 0 on ``pos.device`` (keep the same tensor across calls:
    the positives' cumulative weight is cached per tensor). taken: int64 [B, t] or None;
    row ``b`` also avoids ``taken[b]`` (negative entries are free slots): P(i | u) is then
    proportional to ``weights[i]`` over u's non-positives that are not taken.
    """
    users = users.to(pos.device).long()
    w = weights.to(device=pos.device, dtype=torch.float64)
    cum = torch.cat([torch.zeros(1, dtype=torch.float64, device=pos.device), w.cumsum(0)])
    total = cum[-1]
    pw = pos.positive_weight(weights if weights.dtype == torch.float64 else w)
    left = total - (pw[pos.indptr[users + 1]] - pw[pos.indptr[users]])
    s = None if taken is None else _taken_items(pos, users, taken)
    sw = None
    if s is not None:
        sw = torch.where(s < pos.n_items, w[s.clamp_max(pos.n_items - 1)], 0.0)
        left = left - sw.sum(1)
    if bool((left <= total * 1e-12).any()):
        u = int(users[left <= total * 1e-12][0])
        what = "" if s is None else " not already in its row"
        raise SamplingError(
            f"user {u} has interacted with every item of non-zero sampling weight{what}"
        )
    b = users.numel()

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        t = torch.rand(shape, generator=generator, device=pos.device, dtype=torch.float64) * total
        return (torch.searchsorted(cum, t, right=True) - 1).clamp_(0, pos.n_items - 1)

    def excluded(rows: torch.Tensor | None, items: torch.Tensor) -> torch.Tensor:
        """bool like items ([B, n_neg] for rows None, else [m] for those rows)."""
        if rows is None:
            hit = pos.contains(users[:, None], items)
            return hit if s is None else hit | (items[:, :, None] == s[:, None, :]).any(-1)
        hit = pos.contains(users[rows], items)
        return hit if s is None else hit | (items[:, None] == s[rows]).any(1)

    out = draw((b, n_neg))
    hit = excluded(None, out)
    for _ in range(rounds):
        r, c = hit.nonzero(as_tuple=True)
        if r.numel() == 0:
            break
        new = draw((r.numel(),))
        out[r, c] = new
        hit[r, c] = excluded(r, new)
    r, c = hit.nonzero(as_tuple=True)
    for _ in range(8):  # exact bisection; redo the (measure-zero) rounding hits on excluded items
        if r.numel() == 0:
            return out
        t = torch.rand(r.numel(), generator=generator, device=pos.device, dtype=torch.float64)
        took = None if s is None else (s[r], sw[r])  # type: ignore[index]
        got = _bisect(pos, users[r], t * left[r], cum, pw, took)
        out[r, c] = got
        bad = excluded(r, got) | (w[got] == 0)
        r, c = r[bad], c[bad]
    raise RuntimeError("weighted bisection kept landing on excluded items (rounding)")


def _bisect(
    pos: TorchPositives,
    u: torch.Tensor,
    target: torch.Tensor,
    cum: torch.Tensor,
    pw: torch.Tensor,
    taken: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Smallest item i with C_u(i) > target, C_u(i) = weight of u's free non-positives <= i.

    taken: (items int64 [m, t], their weights float64 [m, t]) removed from each row's mass
    (padding items ``n_items`` weigh nothing below any i), or None.
    """
    lo = torch.zeros_like(u)
    hi = torch.full_like(u, pos.n_items - 1)
    start = pw[pos.indptr[u]]
    while bool((lo < hi).any()):
        mid = (lo + hi) // 2
        idx = torch.searchsorted(pos.keys, u * pos.n_items + mid, right=True)
        c = cum[mid + 1] - (pw[idx] - start)
        if taken is not None:
            c = c - (taken[1] * (taken[0] <= mid[:, None])).sum(1)
        go_left = c > target
        hi = torch.where(go_left, mid, hi)
        lo = torch.where(go_left, lo, mid + 1)
    return lo
