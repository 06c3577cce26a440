"""``stratified``: negatives spread across popularity bands in configured proportions.

Items are ranked by training count (ties by item id) and cut at the ``band_edges``
quantiles of that rank into bands listed head first: with ``band_edges: [0.95, 0.8]``
the head is the top 5% of items, the torso the next 15% and the tail the bottom 80%.
Bands are contiguous ranges of the rank order, so their sizes are exact even when many
items tie on count.

Each cell picks band ``b`` with probability ``bands[b]``, then an item uniformly among the
user's non-positives in that band. Both come from one guide-table draw over items with
weight ``bands[b] / size_b``; a rejected draw is redrawn inside its band, and stragglers
get an exact rank mapping in popularity-rank coordinates. Never a positive.

Fallback (documented choice): when the chosen band holds no non-positive for the user
(or, without replacement, none left in the row), the cell re-picks its band among the
user's bands that still have one, with the configured shares renormalized (or, if those
all have share 0, proportional to what is left). Such cells are counted in
``band_fallback_cells`` in :meth:`describe`; a user with no non-positive at all raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers import register_sampler
from negsamp.samplers._local import LocalPositives
from negsamp.samplers.cdf import DiscreteTable
from negsamp.samplers.exact import DrawStats, capacity_error, resolve
from negsamp.samplers.timeaware import non_positive, normalized


def band_bounds(n_items: int, band_edges: tuple[float, ...]) -> np.ndarray:
    """int64 [n_bands + 1]: rank-order positions, descending: band b is [bounds[b+1], bounds[b]).

    A band can be empty on a tiny catalog; its share then goes to the other bands.
    """
    cuts = [int(round(e * n_items)) for e in band_edges]
    return np.array([n_items, *cuts, 0], np.int64)


@register_sampler("stratified")
def stratified(cfg: Any, train: Interactions, **deps: Any) -> Any:
    """Popularity bands (``by: popularity``, this module) or attribute values (``by:
    attribute``, :class:`negsamp.samplers.attributes.AttributeStratifiedSampler`)."""
    if getattr(cfg, "by", "popularity") == "attribute":
        from negsamp.samplers.attributes import AttributeStratifiedSampler

        return AttributeStratifiedSampler(cfg, train, deps.get("attributes"))
    return StratifiedSampler(cfg, train)


class StratifiedSampler:
    def __init__(self, cfg: Any, train: Interactions, **_: Any) -> None:
        self.cfg = cfg
        self.replace = bool(getattr(cfg, "replace", True))
        self.shares = np.asarray(cfg.bands, np.float64)
        self.shares = self.shares / self.shares.sum()
        self.n_items = n = train.n_items
        self.order = np.argsort(train.item_counts(), kind="stable").astype(np.int32)  # pos -> item
        self.rank = np.empty(n, np.int64)
        self.rank[self.order] = np.arange(n)  # item -> pos
        bounds = band_bounds(n, tuple(cfg.band_edges))
        self.start, self.size = bounds[1:], bounds[:-1] - bounds[1:]
        self.band_of = np.zeros(n, np.int8)  # item -> band
        for b in range(self.start.size):
            self.band_of[self.order[self.start[b] : self.start[b] + self.size[b]]] = b
        share = self.shares * (self.size > 0)
        if share.sum() == 0:  # every band with a share is empty: uniform over the catalog
            share = self.size.astype(np.float64)
        self.effective_shares = share / share.sum()
        per_item = np.divide(share, self.size, out=np.zeros(share.size), where=self.size > 0)
        self.table = DiscreteTable(per_item[self.band_of])
        self.stats = DrawStats()
        self.band_fallback_cells = 0
        self.band_counts = np.zeros(self.start.size, np.int64)

    def avail(self, local: LocalPositives, rows: np.ndarray) -> np.ndarray:
        """int64 [k, n_bands]: the non-positives per band of each row's user."""
        nb = self.start.size
        per = np.bincount(
            local.rows() * nb + self.band_of[local.items], minlength=local.span * nb
        ).reshape(local.span, nb)
        return self.size[None, :] - per[local.lu[rows]]

    def pick_band(self, rng: np.random.Generator, left: np.ndarray) -> np.ndarray:
        """int64 [k]: a band per row among those with ``left > 0``, shares renormalized."""
        p = self.effective_shares[None, :] * (left > 0)
        none = p.sum(axis=1) == 0
        p[none] = left[none]
        cum = np.cumsum(p, axis=1)
        u = rng.random(left.shape[0]) * cum[:, -1]
        return np.minimum((u[:, None] >= cum).sum(axis=1), left.shape[1] - 1)

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """int32 [B, n_neg]: band by share, then uniform over the user's non-positives in it."""
        users = np.asarray(users, np.int64)
        local = LocalPositives(exclude, users)
        need = 1 if self.replace else n_neg
        capacity_error(users, self.n_items - local.deg, need, self.n_items, "stratified sampling")
        out = resolve(local, _BandProposal(self), n_neg, rng, self.replace, self.stats)
        self.band_counts += np.bincount(self.band_of[out.ravel()], minlength=self.start.size)
        return out

    def target(self, exclude: Interactions, users: np.ndarray) -> np.ndarray:
        """Mean over rows of share'_b(u) / avail_b(u) on the user's non-positives (with replacement)."""
        nb = self.start.size
        rows = exclude.rows()
        per = np.bincount(
            rows * nb + self.band_of[exclude.indices], minlength=exclude.n_users * nb
        ).reshape(exclude.n_users, nb)
        avail = self.size[None, :] - per
        share = self.effective_shares[None, :] * (avail > 0)
        share /= np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
        m = np.bincount(np.asarray(users, np.int64), minlength=exclude.n_users)[:, None]
        coef = np.divide(m * share, avail, out=np.zeros(avail.shape), where=avail > 0)
        band = self.band_of.astype(np.int64)
        q = coef.sum(axis=0)[band] - np.bincount(
            exclude.indices, weights=coef[rows, band[exclude.indices]], minlength=self.n_items
        )
        q = np.maximum(q, 0.0)
        return q / q.sum()

    def row_probabilities(
        self, exclude: Interactions, users: np.ndarray, pos_items: np.ndarray
    ) -> np.ndarray:
        """float64 [k, n_items]: share'_b(u) / avail_b(u) on the row user's non-positives."""
        free = non_positive(exclude, users)
        onehot = np.zeros((self.n_items, self.start.size))
        onehot[np.arange(self.n_items), self.band_of] = 1.0
        avail = free @ onehot
        share = self.effective_shares[None, :] * (avail > 0)
        share = np.where(share.sum(axis=1, keepdims=True) > 0, share, avail)
        coef = np.divide(normalized(share), avail, out=np.zeros_like(avail), where=avail > 0)
        return free * coef[:, self.band_of]

    def describe(self) -> dict[str, Any]:
        drawn = self.band_counts / max(self.band_counts.sum(), 1)
        return {
            "method": "guide-table band and item, rejection inside the band, exact rank mapping",
            "replace": self.replace,
            "band_shares": self.shares.tolist(),
            "effective_band_shares": self.effective_shares.tolist(),
            "band_edges": list(self.cfg.band_edges),
            "band_sizes": self.size.tolist(),
            "drawn_band_shares": drawn.tolist(),
            "band_fallback_cells": int(self.band_fallback_cells),
        }


class _BandProposal:
    """Piecewise-uniform over bands; exact draws select in popularity-rank coordinates."""

    def __init__(self, s: StratifiedSampler) -> None:
        self.s = s
        self._rank_local: LocalPositives | None = None

    def first(self, rng: np.random.Generator, n_rows: int, n_neg: int) -> np.ndarray:
        return self.s.table.draw(rng, (n_rows, n_neg))

    def redraw(self, rng: np.random.Generator, last: np.ndarray) -> np.ndarray:
        s, band = self.s, self.s.band_of[last]
        return s.order[s.start[band] + (rng.random(last.size) * s.size[band]).astype(np.int64)]

    def exact(self, rng, local, rows, last, taken):  # noqa: ANN001, ANN201 - see Proposal
        s = self.s
        if self._rank_local is None:  # the block's positives as sorted rank positions
            key = np.sort(local.rows() * s.n_items + s.rank[local.items])
            self._rank_local = LocalPositives.from_rows(
                local.indptr, key % s.n_items, local.lu, s.n_items
            )
        rl, lu, k = self._rank_local, local.lu[rows], np.arange(rows.size)
        left = s.avail(local, rows)
        tpos = None
        if taken is not None and taken.shape[1]:
            tpos = s.rank[taken]
            left -= (s.band_of[taken][:, :, None] == np.arange(left.shape[1])).sum(axis=1)
        b = s.band_of[last].astype(np.int64)
        dead = np.flatnonzero(left[k, b] == 0)
        if dead.size:
            b[dead] = s.pick_band(rng, left[dead])
            s.band_fallback_cells += dead.size
        start = s.start[b]
        below = start - rl.count_below(lu, start)
        if tpos is not None:
            below -= (tpos < start[:, None]).sum(axis=1)
        r = (rng.random(rows.size) * left[k, b]).astype(np.int64)
        return s.order[rl.select(lu, below + r, tpos)]
