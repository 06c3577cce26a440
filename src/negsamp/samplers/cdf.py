"""Inverse-CDF draws from fixed item weights, O(1) per draw via a guide table.

``searchsorted`` on the cumulative weights costs ~log2(n_items) cache-missing steps per
draw. A guide table (Chen & Asau's indexed search) stores, for each of ``m`` equal slices
of the total weight, the first item that can be hit there; a draw starts there and steps
forward once if the target lies beyond that item; slices that lie inside one item (most
of them) need no comparison at all. The answer is *exactly* the ``searchsorted`` answer
(same comparisons on the same doubles), so it never returns an item of zero weight; the
rare draws needing more than one step fall back to ``searchsorted``.
"""

from __future__ import annotations

import numpy as np


def _count_le(cum: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.searchsorted(cum, q, side="right")`` for sorted ``q``, by merging: each of the
    (fewer) ``cum`` values is placed among the queries, then counted up to each query."""
    if q.size < 2 * cum.size or (np.diff(q) < 0).any():
        return np.searchsorted(cum, q, side="right")
    at = np.searchsorted(q, cum, side="left")  # cum[i] <= q[j]  <=>  j >= at[i]
    return np.cumsum(np.bincount(at, minlength=q.size + 1))[: q.size]


class DiscreteTable:
    """P(i) = weights[i] / sum(weights) over ``n`` items.

    cum:   float64 [n + 1], cumulative weights (cum[0] = 0)
    guide: int32 [m + 1], the item hit by the smallest target of each slice, stored as
           -(item + 1) when the slice may reach into a later item ("mixed")
    """

    MAX_SLICES = 1 << 24

    def __init__(self, weights: np.ndarray, max_mixed: float = 0.15) -> None:
        w = np.asarray(weights, np.float64)
        if w.ndim != 1 or w.size == 0 or (w < 0).any() or not np.isfinite(w).all():
            raise ValueError("weights must be a non-empty 1-d array of finite values >= 0")
        self.weights = w
        self.n = w.size
        self.cum = np.concatenate(([0.0], np.cumsum(w)))
        self.total = float(self.cum[-1])
        if self.total <= 0:
            raise ValueError("weights sum to zero: nothing can be drawn")
        last = int(np.flatnonzero(w > 0)[-1])
        # end of item i; +inf from the last item of positive weight on, so that a target
        # rounded up to the total still stops on an item that can be drawn
        self._next = self.cum[1:].copy()
        self._next[last:] = np.inf
        self._last = last
        # the fewest slices per item for which few slices hold an item boundary
        for spi in (4, 8, 16, 32):
            self.m = min(spi * self.n, self.MAX_SLICES)
            guide = self._guide()
            mixed = guide[1:] != guide[:-1]  # slice b may end in a later item
            if mixed.mean() <= max_mixed or self.m == self.MAX_SLICES:
                break
        # pure slices hold their item, mixed ones -(item + 1): one take answers most draws
        self.guide = np.where(np.append(mixed, True), -guide - 1, guide).astype(np.int32)
        self.mixed_share = float(mixed.mean())

    def _guide(self) -> np.ndarray:
        """int32 [m + 1]: the item at the smallest double f with int(f * m) == b, per slice b.

        t = f * total is monotone in f, so every draw of slice b lands at or after it.
        """
        b = np.arange(self.m + 1)
        f = b / self.m
        for _ in range(4):  # step down while the previous double still lands in slice b
            prev = np.nextafter(f, 0.0)
            down = ((prev * self.m).astype(np.int64) >= b) & (b > 0)
            if not down.any():  # a fixed point: further steps change nothing
                break
            f = np.where(down, prev, f)
        for _ in range(4):  # step up while f still lands below slice b
            up = (f * self.m).astype(np.int64) < b
            if not up.any():
                break
            f = np.where(up, np.nextafter(f, 1.0), f)
        g = _count_le(self.cum, f * self.total) - 1
        return np.clip(g, 0, self._last).astype(np.int32)

    def from_uniform(self, f: np.ndarray) -> np.ndarray:
        """int32, shape of ``f``: the item at quantile ``f`` (float64 in [0, 1))."""
        idx = np.take(self.guide, (f * self.m).astype(np.int32))
        mix = np.flatnonzero(idx < 0)
        if mix.size:
            flat = idx.reshape(-1)
            t = f.reshape(-1)[mix] * self.total
            i = -flat[mix] - 1
            i += t >= np.take(self._next, i)
            left = np.flatnonzero(t >= np.take(self._next, i))
            if left.size:
                got = np.searchsorted(self.cum, t[left], side="right") - 1
                i[left] = np.minimum(got, self._last)
            flat[mix] = i
        return idx

    def draw(self, rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
        """int32 [shape]: i.i.d. draws."""
        return self.from_uniform(rng.random(shape))

    def heaviest(self, k: np.ndarray) -> np.ndarray:
        """float64 like ``k``: the total weight of the ``k`` heaviest items (an upper bound
        on the weight of any ``k`` items); the sorted table is built on first use."""
        top = getattr(self, "_heaviest", None)
        if top is None:
            top = self._heaviest = np.concatenate(([0.0], np.cumsum(np.sort(self.weights)[::-1])))
        return top[np.minimum(k, self.n)]

    def probabilities(self) -> np.ndarray:
        """float64 [n]: the normalized weights."""
        return self.weights / self.total
