"""Block-local views of the excluded positives: a membership bitmap and exact order statistics.

Samplers draw for a block of rows whose users span a small id range ``[lo, hi]``; the
positives of those users are one contiguous slice of the CSR. Everything here is built
from that slice, so its cost is O(slice), never O(nnz), and stays cache-resident:

* membership is one gather from a byte-per-(user, item) mask of the block, reused per
  thread (cleared lazily on the next use, so it costs O(slice), not O(span x n_items));
  a packed bitmap for wider blocks; a ``searchsorted`` on the slice's keys beyond that;
* :meth:`LocalPositives.select` maps a rank ``r`` to the ``r``-th non-positive item of a
  user (the "skip the positives below" trick), optionally also skipping a few extra items
  per row (the row's earlier draws, for sampling without replacement);
* :meth:`LocalPositives.select_weighted` finds the item where a target falls on the
  user's cumulative non-positive weight, by a vectorized bisection.
"""

from __future__ import annotations

import threading

import numpy as np

from negsamp.interactions import Interactions

MAX_MASK_CELLS = 1 << 25  # 32 MiB byte mask per thread: span x n_items up to this
MAX_BITMAP_BITS = 1 << 28  # 32 MiB packed bitmap beyond that; searchsorted above this
MAX_COMPLEMENT_CELLS = 1 << 24  # 16 MiB bool rows per chunk of LocalPositives.complement
_BIT = (1 << np.arange(8)).astype(np.uint8)
_ws = threading.local()  # buf: bool workspace, dirty: indices set in it, owner: token


def _acquire_mask(cells: int, marks: np.ndarray) -> tuple[np.ndarray, object]:
    """The thread's zeroed bool workspace (>= ``cells``) with ``marks`` set, and an owner token."""
    buf = getattr(_ws, "buf", None)
    if buf is None or buf.size < cells:
        buf = _ws.buf = np.zeros(max(cells, 1 << 20), bool)
    elif getattr(_ws, "dirty", None) is not None:
        buf[_ws.dirty] = False
    _ws.dirty = marks
    buf[marks] = True
    token = _ws.owner = object()
    return buf, token


class LocalPositives:
    """The positives of the users ``users.min() .. users.max()``, for rows of those users.

    lu:    int64 [B], each row's user minus ``lo`` (the local user id)
    deg:   int64 [B], each row's user's number of positives
    items: int32 [m], the slice's positive items (sorted within each local user)
    """

    def __init__(self, pos: Interactions, users: np.ndarray) -> None:
        users = np.asarray(users, np.int64)
        self.n_items = n = pos.n_items
        lo, hi = (int(users.min()), int(users.max())) if users.size else (0, -1)
        a, b = (int(pos.indptr[lo]), int(pos.indptr[hi + 1])) if users.size else (0, 0)
        self.lo, self.span, self.nnz = lo, hi - lo + 1, b - a
        self.indptr = pos.indptr[lo : hi + 2] - a if users.size else np.zeros(1, np.int64)
        self.items = pos.indices[a:b]
        self._keys = pos._keys[a:b]  # int64 u * n_items + item, global user ids
        self.lu = users - lo
        self.deg = np.diff(self.indptr)[self.lu]
        self._skip: np.ndarray | None = None
        self._pos_w: tuple[int, np.ndarray] | None = None
        self._mask: np.ndarray | None = None
        self._bits: np.ndarray | None = None
        self._token: object | None = None
        cells = self.span * n
        if self.nnz and cells <= MAX_MASK_CELLS:
            self._mask, self._token = _acquire_mask(cells, self._keys - lo * n)
            self._base = self.lu.astype(np.int32) * np.int32(n)  # int32 [B], row offsets
        elif self.nnz and cells <= MAX_BITMAP_BITS:
            self._bits = self._bitmap()

    @classmethod
    def from_rows(
        cls, indptr: np.ndarray, items: np.ndarray, lu: np.ndarray, n_items: int
    ) -> LocalPositives:
        """A local view over given rows (e.g. positives in another item order); select only."""
        self = cls.__new__(cls)
        self.n_items, self.lo, self.span, self.nnz = n_items, 0, indptr.size - 1, items.size
        self.indptr, self.items, self.lu = indptr, items, lu
        self.deg = np.diff(indptr)[lu]
        self._keys = self.rows() * n_items + items.astype(np.int64)
        self._bits, self._skip, self._pos_w, self._mask, self._token = None, None, None, None, None
        return self

    def rows(self) -> np.ndarray:
        """int64 [m]: the local user of each positive of the slice."""
        return np.repeat(np.arange(self.span, dtype=np.int64), np.diff(self.indptr))

    def _bitmap(self) -> np.ndarray:
        bit = self._keys - self.lo * self.n_items  # sorted, unique
        byte = bit >> 3
        first = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
        out = np.zeros((self.span * self.n_items + 7) >> 3, np.uint8)
        out[byte[first]] = np.bitwise_or.reduceat(_BIT[bit & 7], first)
        return out

    def hit(self, lu: np.ndarray, items: np.ndarray) -> np.ndarray:
        """bool, broadcast shape of (lu, items): is ``items`` a positive of local user ``lu``?"""
        if self.nnz == 0:
            return np.zeros(np.broadcast_shapes(np.shape(lu), np.shape(items)), bool)
        if self._mask is not None:
            return self._gather(np.asarray(lu).astype(np.int32) * np.int32(self.n_items), items)
        if self._bits is not None:
            idx = lu.astype(np.int32) * np.int32(self.n_items) + items.astype(np.int32, copy=False)
            return (self._bits[idx >> 3] & _BIT[idx & 7]) != 0
        q = (lu + self.lo) * self.n_items + items.astype(np.int64)
        at = np.minimum(np.searchsorted(self._keys, q), self.nnz - 1)
        return self._keys[at] == q

    def hit_rows(self, rows: np.ndarray | None, items: np.ndarray) -> np.ndarray:
        """bool like ``items``: rows None with items [B, k] (every row), or items [k] of ``rows``."""
        if self._mask is None:
            return self.hit(self.lu[:, None] if rows is None else self.lu[rows], items)
        return self._gather(self._base[:, None] if rows is None else self._base[rows], items)

    def _gather(self, base: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self._token is not None and getattr(_ws, "owner", None) is not self._token:
            mask = np.zeros(self.span * self.n_items, bool)  # another block took the workspace
            mask[self._keys - self.lo * self.n_items] = True
            self._mask, self._token = mask, None
        return np.take(self._mask, base + items.astype(np.int32, copy=False))

    def count_below(self, lu: np.ndarray, items: np.ndarray) -> np.ndarray:
        """int64: how many of the local user's positives are < ``items``."""
        q = (lu + self.lo) * self.n_items + np.asarray(items, np.int64)
        return np.searchsorted(self._keys, q) - self.indptr[lu]

    def select(
        self, lu: np.ndarray, ranks: np.ndarray, taken: np.ndarray | None = None
    ) -> np.ndarray:
        """int64 [k]: the ``ranks``-th (0-based) item of ``lu`` that is neither positive nor taken.

        taken: int [k, t] distinct non-positive items per row to skip as well (or None).
        The answer is the fixed point of y = r + #(taken <= select(y)), reached from below
        in at most t + 1 steps, so the rank space stays exact.
        """
        if self._skip is None:
            k = np.arange(self.nnz, dtype=np.int64) - np.repeat(
                self.indptr[:-1], np.diff(self.indptr)
            )
            self._skip = self.rows() * (self.n_items + 1) + self.items - k
        ranks = np.asarray(ranks, np.int64)

        def one(y: np.ndarray) -> np.ndarray:
            q = lu * (self.n_items + 1) + y
            return y + np.searchsorted(self._skip, q, side="right") - self.indptr[lu]

        item = one(ranks)
        if taken is None or taken.shape[1] == 0:
            return item
        y = ranks
        for _ in range(taken.shape[1] + 1):
            y_next = ranks + (taken <= item[:, None]).sum(axis=1)
            if np.array_equal(y_next, y):
                break
            y = y_next
            item = one(y)
        return item

    def complement(self, lus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each of the distinct local users ``lus`` (int64 [k], ascending) 's non-positive
        items, ascending: (int32 [sum of their n_items - deg] items, int64 [k + 1] offsets).

        Built from a bool row per user (positives scattered in, then ``flatnonzero``), in
        chunks of at most :data:`MAX_COMPLEMENT_CELLS`: O(k x n_items) time, bounded memory.
        """
        n = self.n_items
        offsets = np.zeros(lus.size + 1, np.int64)
        np.cumsum(n - np.diff(self.indptr)[lus], out=offsets[1:])
        items = np.empty(int(offsets[-1]), np.int32)
        step = max(1, MAX_COMPLEMENT_CELLS // max(n, 1))
        for c in range(0, lus.size, step):  # chunks of users, not a loop per user
            part = lus[c : c + step]
            starts, ends = self.indptr[part], self.indptr[part + 1]
            lens = ends - starts
            at = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
            free = np.ones((part.size, n), bool)
            free[np.repeat(np.arange(part.size), lens), self.items[at]] = False
            items[offsets[c] : offsets[c + part.size]] = np.flatnonzero(free) % n
        return items, offsets

    def positive_weight(self, w: np.ndarray) -> np.ndarray:
        """float64 [m + 1]: cumulative ``w`` over the slice's positives (cached per ``w``)."""
        if self._pos_w is None or self._pos_w[0] != id(w):
            self._pos_w = (id(w), np.concatenate(([0.0], np.cumsum(w[self.items]))))
        return self._pos_w[1]

    def remaining_weight(self, lu: np.ndarray, w: np.ndarray, total: float) -> np.ndarray:
        """float64 [k]: the weight of each local user's non-positive items."""
        pw = self.positive_weight(w)
        return total - (pw[self.indptr[lu + 1]] - pw[self.indptr[lu]])

    def select_weighted(
        self,
        lu: np.ndarray,
        target: np.ndarray,
        w: np.ndarray,
        cum: np.ndarray,
        taken: np.ndarray | None = None,
    ) -> np.ndarray:
        """int64 [k]: smallest item i with C(i) > target, by bisection over the catalog.

        C(i) = weight of the user's non-positive, non-taken items <= i; ``cum`` is
        float64 [n_items + 1], the cumulative of ``w`` over the catalog.
        """
        pw = self.positive_weight(w)
        lo = np.zeros(lu.size, np.int64)
        hi = np.full(lu.size, self.n_items - 1, np.int64)
        start, base = pw[self.indptr[lu]], (lu + self.lo) * self.n_items
        tw = None if taken is None or taken.shape[1] == 0 else w[taken]
        while (lo < hi).any():
            mid = (lo + hi) // 2
            c = cum[mid + 1] - (pw[np.searchsorted(self._keys, base + mid, side="right")] - start)
            if tw is not None:
                c -= (tw * (taken <= mid[:, None])).sum(axis=1)
            left = c > target
            hi = np.where(left, mid, hi)
            lo = np.where(left, lo, mid + 1)
        return lo
