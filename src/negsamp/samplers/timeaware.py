"""``exclude_unreleased``: negatives that already existed when the positive happened.

Any data-side sampler (``uniform``, ``popularity``, ``stratified``, ``same_attribute``, and
the base of ``hard`` / ``mixed``) can be wrapped: a negative for a positive at time ``t``
is never an item first seen after ``t`` (first seen: the item's earliest interaction in
the log, or its release date from ``data.item_features``; see :class:`ItemTimes`).

The draw is the wrapped sampler's own distribution for the row *conditioned on* the item
being released by ``t``: cells holding a not-yet-released item are redrawn by the wrapped
sampler (rejection, exact for that conditional) or, for samplers with fixed item weights
(uniform, popularity: :meth:`static_weights`), drawn directly from those weights over the
items released by ``t`` (a prefix of the items in first-seen order) and rejected only when
a positive, which is the same conditional; cells still unresolved after
:data:`ROUNDS` rounds get an exact draw from the row's probabilities
(:meth:`row_probabilities` of the wrapped sampler, times the released mask) computed densely
for those rows only. Fallback (stated, counted as ``unreleased_fallback_cells``): a row
whose sampler puts no mass on any released non-positive keeps the unrestricted draw.

The manifest reports ``unreleased_share``: how often the unrestricted sampler's first draw
was an item that did not exist yet at the positive's time. Draws with replacement only
(the config refuses ``replace: false`` with ``exclude_unreleased``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers._local import LocalPositives
from negsamp.samplers.exact import ROUNDS

MAX_DENSE = 1 << 22  # cells of one dense fallback chunk (rows x n_items)
NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class ItemTimes:
    """When each item first existed, and when each training positive happened.

    first_seen: int64 [n_items], unix seconds (NEVER for an item with no known time)
    keys:       int64 [m] sorted user * n_items + item of the timed positives
    times:      int64 [m] the positive's time
    """

    first_seen: np.ndarray
    keys: np.ndarray
    times: np.ndarray
    source: str = "log"

    @classmethod
    def build(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        times: np.ndarray,
        first_seen: np.ndarray,
        source: str = "log",
    ) -> ItemTimes:
        n_items = first_seen.size
        keys = np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64)
        order = np.argsort(keys, kind="stable")
        return cls(
            np.asarray(first_seen, np.int64),
            keys[order],
            np.asarray(times, np.int64)[order],
            source,
        )

    def at(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """int64 [B]: the time of positive (user, item); NEVER (no restriction) if unknown."""
        q = np.asarray(users, np.int64) * self.first_seen.size + np.asarray(items, np.int64)
        if not self.keys.size:
            return np.full(q.shape, NEVER)
        at = np.minimum(np.searchsorted(self.keys, q), self.keys.size - 1)
        return np.where(self.keys[at] == q, self.times[at], NEVER)


class TimeAwareSampler:
    """A data-side sampler restricted to items released by each positive's time."""

    def __init__(self, inner: Any, times: ItemTimes) -> None:
        if not hasattr(inner, "row_probabilities"):
            raise ValueError(
                f"sampler {inner.cfg.name!r} does not support exclude_unreleased (it has no "
                "per-row probabilities); use uniform, popularity, stratified or same_attribute"
            )
        self.inner, self.times, self.cfg = inner, times, inner.cfg
        self.stats = inner.stats
        self._prefix: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if hasattr(inner, "static_weights"):  # items in first-seen order, cumulative weight
            order = np.argsort(times.first_seen, kind="stable")
            w = np.asarray(inner.static_weights(), np.float64)[order]
            self._prefix = (order, times.first_seen[order], np.cumsum(w))
        self.cells = 0
        self.unreleased_first = 0
        self.redrawn = 0
        self.dense_cells = 0
        self.fallback_cells = 0

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        users, pos_items = np.asarray(users, np.int64), np.asarray(pos_items, np.int64)
        out = self.inner.sample(exclude, users, pos_items, n_neg, rng)
        t = self.times.at(users, pos_items)
        seen = self.times.first_seen
        cells = np.flatnonzero(seen[out.ravel()] > np.repeat(t, n_neg))
        self.cells += out.size
        self.unreleased_first += cells.size
        flat = out.reshape(-1)
        local = LocalPositives(exclude, users) if self._prefix is not None else None
        for _ in range(ROUNDS):
            if not cells.size:
                return out
            rows = cells // n_neg
            self.redrawn += cells.size
            if local is None:
                new = self.inner.sample(exclude, users[rows], pos_items[rows], 1, rng)[:, 0]
                flat[cells] = new
                cells = cells[seen[new] > t[rows]]
                continue
            new, ok = self._released(rng, t[rows])
            good = ok & ~local.hit_rows(rows, new)  # released weight left, not a positive
            flat[cells[good]] = new[good]  # the others keep the unrestricted draw so far
            cells = cells[~good]
        if cells.size:
            self._dense(exclude, users, pos_items, t, flat, cells, n_neg, rng)
        return out

    def _released(self, rng: np.random.Generator, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(int64 [k] items drawn by static weight among those first seen by ``t`` [k], bool
        [k] whether the row had any such weight; its item is meaningless otherwise)."""
        order, seen_sorted, cum = self._prefix  # type: ignore[misc]
        k = np.searchsorted(seen_sorted, t, side="right")
        total = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
        at = np.searchsorted(cum, rng.random(t.size) * total, side="right")
        return order[np.minimum(at, np.maximum(k - 1, 0))], total > 0

    def _dense(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        t: np.ndarray,
        flat: np.ndarray,
        cells: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> None:
        """Exact draws for ``cells`` from the row's probabilities times the released mask."""
        n_items = exclude.n_items
        step = max(1, MAX_DENSE // n_items)
        for a in range(0, cells.size, step):  # chunks bound memory; not a loop per user
            c = cells[a : a + step]
            rows = c // n_neg
            p = self.inner.row_probabilities(exclude, users[rows], pos_items[rows])
            p = p * (self.times.first_seen[None, :] <= t[rows, None])
            cum = np.cumsum(p, axis=1)
            total = cum[:, -1]
            ok = total > 0
            target = rng.random(c.size) * total
            got = np.minimum((cum <= target[:, None]).sum(axis=1), n_items - 1)
            flat[c[ok]] = got[ok]
            self.dense_cells += int(ok.sum())
            self.fallback_cells += int((~ok).sum())

    def describe(self) -> dict[str, Any]:
        return {
            **self.inner.describe(),
            "exclude_unreleased": True,
            "first_seen": self.times.source,
            # how often the unrestricted sampler drew an item that did not exist yet
            "unreleased_share": self.unreleased_first / self.cells if self.cells else 0.0,
            "unreleased_redrawn_cells": int(self.redrawn),
            "unreleased_dense_cells": int(self.dense_cells),
            "unreleased_fallback_cells": int(self.fallback_cells),
        }


def non_positive(exclude: Interactions, users: np.ndarray) -> np.ndarray:
    """float64 [k, n_items]: 1 where the item is not an excluded positive of the row's user."""
    local = LocalPositives(exclude, users)
    items = np.arange(exclude.n_items)
    return (~local.hit(local.lu[:, None], items[None, :])).astype(np.float64)


def normalized(w: np.ndarray) -> np.ndarray:
    """Rows of ``w`` divided by their sums (all-zero rows stay zero)."""
    s = w.sum(axis=1, keepdims=True)
    return np.divide(w, s, out=np.zeros_like(w), where=s > 0)
