"""Attribute-aware negatives: ``same_attribute`` and ``stratified`` with ``by: attribute``.

Both pick a *value* of one attribute family (``genre``) per cell, then an item uniformly
among the user's non-positives carrying that value:

* ``same_attribute``: one of the positive's values, uniformly (a Comedy|Romance positive
  gets a Comedy negative half of the time, a Romance one the other half): plausible
  items the user did not choose, the "aligned" negatives;
* ``stratified`` by attribute: value ``v`` with its configured share (equal shares over
  the family's values by default), so genres appear in set proportions.

Fallback (stated, counted as ``fallback_cells`` / ``fallback_share`` in the manifest): a
cell whose positive has no value in the family, or whose value holds no non-positive for
the user (or, without replacement, none left in the row), is drawn uniformly over the
user's non-positives. Never a positive.

The engine works in *pair space*: every (value, item) pair has a position ``g`` in one
array sorted by (value, item), and a pseudo-value ``ALL`` holding every item is appended
(the uniform fallback). A draw is a position, so a rejected cell is redrawn inside its
value; stragglers get the exact rank mapping over the user's non-positive pairs of that
value (the same skip-the-positives trick :mod:`negsamp.samplers._local` uses for items).
No Python loop runs per user or per positive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from negsamp.interactions import Interactions
from negsamp.samplers import register_sampler
from negsamp.samplers._local import LocalPositives
from negsamp.samplers.exact import ROUNDS, DrawStats, SamplingError, capacity_error
from negsamp.samplers.timeaware import non_positive


class AttributeIndex:
    """One attribute family as (value, item) pairs, plus the pseudo-value ALL (every item).

    names: the family's values (sorted); ALL = len(names)
    key:   int64 [M], value * n_items + item, sorted (position g = a pair)
    item:  int32 [M], the item at each position; value: int64 [M], its value
    start: int64 [n_values + 2], value v holds positions [start[v], start[v + 1])
    item_ptr, item_pos: item -> its positions (ALL excluded), CSR by item
    """

    def __init__(self, attributes: pl.DataFrame | None, family: str, n_items: int) -> None:
        have = [] if attributes is None else attributes["family"].unique().sort().to_list()
        if family not in have:
            raise SamplingError(
                f"attribute family {family!r} is not in the item features (families: {have}); "
                "set data.item_features (e.g. source: movielens-100k) and run ingest, or pick "
                "one of those families"
            )
        rows = attributes.filter((pl.col("family") == family) & (pl.col("item") < n_items))
        self.names: list[str] = rows["value"].unique().sort().to_list()
        code = rows["value"].cast(pl.Enum(self.names)).to_physical().to_numpy().astype(np.int64)
        self.n_items, self.all = n_items, len(self.names)
        pairs = np.unique(code * n_items + rows["item"].to_numpy().astype(np.int64))
        self.key = np.concatenate([pairs, self.all * n_items + np.arange(n_items)])
        self.item = (self.key % n_items).astype(np.int32)
        self.value = self.key // n_items
        self.start = np.searchsorted(self.key, np.arange(self.all + 2) * n_items)
        self.size = np.diff(self.start)
        by_item = np.argsort(self.item[: pairs.size], kind="stable")
        self.item_pos = by_item.astype(np.int64)
        self.item_ptr = np.zeros(n_items + 1, np.int64)
        np.cumsum(np.bincount(self.item[: pairs.size], minlength=n_items), out=self.item_ptr[1:])
        self.item_deg = np.diff(self.item_ptr)

    def position(self, value: np.ndarray, item: np.ndarray) -> np.ndarray:
        """int64: the position of (value, item), or M + 1 where the item lacks the value."""
        q = np.asarray(value, np.int64) * self.n_items + np.asarray(item, np.int64)
        at = np.minimum(np.searchsorted(self.key, q), self.key.size - 1)
        return np.where(self.key[at] == q, at, self.key.size + 1)

    def uniform_in(self, rng: np.random.Generator, value: np.ndarray) -> np.ndarray:
        """int64 like ``value``: a uniform position inside each value."""
        return self.start[value] + (rng.random(value.shape) * self.size[value]).astype(np.int64)


class _PairPositives:
    """A block's positives in pair space: per local user, the positions of its positive
    items' pairs (each value the item carries, and ALL), for counts and exact selection."""

    def __init__(self, idx: AttributeIndex, local: LocalPositives) -> None:
        rows, items = local.rows(), local.items.astype(np.int64)
        deg = idx.item_deg[items]
        rep = np.repeat(np.arange(items.size), deg)
        within = np.arange(rep.size) - np.repeat(np.cumsum(deg) - deg, deg)
        pos = idx.item_pos[idx.item_ptr[items[rep]] + within]
        all_pos = idx.start[idx.all] + items
        lu = np.concatenate([rows[rep], rows])
        g = np.concatenate([pos, all_pos])
        order = np.lexsort((g, lu))
        lu, g = lu[order], g[order]
        indptr = np.zeros(local.span + 1, np.int64)
        np.cumsum(np.bincount(lu, minlength=local.span), out=indptr[1:])
        self.rl = LocalPositives.from_rows(indptr, g, local.lu, idx.key.size)
        nv = idx.all + 1
        per = np.bincount(lu * nv + idx.value[g], minlength=local.span * nv)
        self.avail = idx.size[None, :] - per.reshape(local.span, nv)  # [span, n_values + 1]


class _ValueSampler:
    """The shared engine: subclasses say how a cell picks its value (:meth:`pick`)."""

    family: str
    index: AttributeIndex

    def __init__(self, cfg: Any, train: Interactions, attributes: pl.DataFrame | None) -> None:
        self.cfg = cfg
        self.replace = bool(getattr(cfg, "replace", True))
        self.n_items = train.n_items
        self.index = AttributeIndex(attributes, self.family, train.n_items)
        self.stats = DrawStats()
        self.cells = 0
        self.fallback_cells = 0
        self.value_counts = np.zeros(self.index.all + 1, np.int64)

    def pick(self, rng: np.random.Generator, pos_items: np.ndarray, n_neg: int) -> np.ndarray:
        """int64 [B, n_neg]: the value of each cell (ALL where the positive has none)."""
        raise NotImplementedError

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        users = np.asarray(users, np.int64)
        local = LocalPositives(exclude, users)
        need = 1 if self.replace else n_neg
        what = f"{self.cfg.name} sampling"
        capacity_error(users, self.n_items - local.deg, need, self.n_items, what)
        idx, pp = self.index, _PairPositives(self.index, local)
        v = self.pick(rng, np.asarray(pos_items, np.int64), n_neg)
        dead = pp.avail[local.lu[:, None], v] == 0  # no non-positive with that value
        v[dead] = idx.all
        fell = int((v == idx.all).sum())
        g = idx.uniform_in(rng, v)
        if self.replace:
            flat = g.reshape(-1)
            rows = np.repeat(np.arange(users.size), n_neg)
            fell += self._resolve(rng, local, pp, flat, rows, None)
        else:
            for j in range(n_neg):
                taken = idx.item[g[:, :j]]
                col = g[:, j].copy()
                fell += self._resolve(rng, local, pp, col, np.arange(users.size), taken)
                g[:, j] = col
        self.cells += g.size
        self.fallback_cells += fell
        self.value_counts += np.bincount(idx.value[g.ravel()], minlength=idx.all + 1)
        return idx.item[g]

    def _resolve(
        self,
        rng: np.random.Generator,
        local: LocalPositives,
        pp: _PairPositives,
        g: np.ndarray,
        rows: np.ndarray,
        taken: np.ndarray | None,
    ) -> int:
        """Redraw, in place, the cells of ``g`` (positions [k], rows [k]) holding a positive
        (or an item in ``taken`` [B, j]) inside their value; exact rank mapping for the
        stragglers. Returns how many cells fell back to ALL in the exact step."""
        idx, st = self.index, self.stats

        def bad(cells: np.ndarray) -> np.ndarray:
            it = idx.item[g[cells]]
            out = local.hit_rows(rows[cells], it)
            if taken is not None and taken.shape[1]:
                out |= (taken[rows[cells]] == it[:, None]).any(axis=1)
            return out

        cells = np.arange(g.size)
        st.draws += g.size
        cells = cells[bad(cells)]
        st.rejected += cells.size
        for r in range(ROUNDS):
            if not cells.size:
                return 0
            g[cells] = idx.uniform_in(rng, idx.value[g[cells]])
            st.draws += cells.size
            n = cells.size
            cells = cells[bad(cells)]
            st.rejected += cells.size
            if r and 2 * cells.size > n:  # mostly hopeless cells left: go exact
                break
        if not cells.size:
            return 0
        st.exact += cells.size
        rw = rows[cells]
        lu = local.lu[rw]
        v = idx.value[g[cells]]
        tk = None if taken is None else taken[rw]

        def left_in(v: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            left = pp.avail[lu, v]
            if tk is None or not tk.shape[1]:
                return left, None
            tpos = idx.position(v[:, None], tk)  # M + 1 where a taken item lacks the value
            return left - (tpos <= idx.key.size).sum(axis=1), tpos

        left, tpos = left_in(v)
        dead = left <= 0
        if dead.any():
            v = np.where(dead, idx.all, v)
            left, tpos = left_in(v)
        start = idx.start[v]
        below = start - pp.rl.count_below(lu, start)
        if tpos is not None:
            below -= (tpos < start[:, None]).sum(axis=1)
        rank = below + (rng.random(cells.size) * left).astype(np.int64)
        g[cells] = pp.rl.select(lu, rank, tpos)
        return int(dead.sum())

    def value_probabilities(self, pos_items: np.ndarray) -> np.ndarray:
        """float64 [k, n_values + 1]: the probability a row's cell picks each value."""
        raise NotImplementedError

    def row_probabilities(
        self, exclude: Interactions, users: np.ndarray, pos_items: np.ndarray
    ) -> np.ndarray:
        """float64 [k, n_items]: each row's draw distribution (with replacement): its value
        probabilities, a dead value's mass moved to ALL, uniform over the non-positives in it."""
        idx = self.index
        member = np.zeros((idx.all + 1, idx.n_items))
        member[idx.value, idx.item] = 1.0
        free = non_positive(exclude, users)
        avail = free @ member.T
        p = self.value_probabilities(np.asarray(pos_items, np.int64))
        dead = avail == 0
        p[:, idx.all] += (p * dead).sum(axis=1)
        p[dead] = 0.0
        coef = np.divide(p, avail, out=np.zeros_like(p), where=avail > 0)
        return free * (coef @ member)

    def describe(self) -> dict[str, Any]:
        drawn = self.value_counts / max(self.value_counts.sum(), 1)
        return {
            "method": "value per cell, uniform item of that value; rejection inside the value, "
            "exact rank mapping over the user's non-positive (value, item) pairs",
            "replace": self.replace,
            "family": self.family,
            "values": self.index.names,
            "drawn_value_shares": dict(
                zip([*self.index.names, "(uniform fallback)"], drawn.tolist(), strict=True)
            ),
            "fallback_cells": int(self.fallback_cells),
            "fallback_share": self.fallback_cells / self.cells if self.cells else 0.0,
        }


@register_sampler("same_attribute")
class SameAttributeSampler(_ValueSampler):
    """Negatives sharing an attribute value with the positive (see the module docstring)."""

    def __init__(
        self, cfg: Any, train: Interactions, attributes: pl.DataFrame | None = None, **_: Any
    ) -> None:
        self.family = cfg.family
        super().__init__(cfg, train, attributes)

    def pick(self, rng: np.random.Generator, pos_items: np.ndarray, n_neg: int) -> np.ndarray:
        idx = self.index
        inside = (pos_items >= 0) & (pos_items < idx.n_items)  # else: no value (fallback)
        pos_items = np.where(inside, pos_items, 0)
        deg = np.where(inside, idx.item_deg[pos_items], 0)[:, None]
        k = (rng.random((pos_items.size, n_neg)) * deg).astype(np.int64)
        at = idx.item_pos[np.minimum(idx.item_ptr[pos_items][:, None] + k, idx.item_pos.size - 1)]
        return np.where(deg > 0, idx.value[at], idx.all)

    def value_probabilities(self, pos_items: np.ndarray) -> np.ndarray:
        idx = self.index
        inside = (pos_items >= 0) & (pos_items < idx.n_items)
        items = np.where(inside, pos_items, 0)
        deg = np.where(inside, idx.item_deg[items], 0)
        p = np.zeros((items.size, idx.all + 1))
        row = np.repeat(np.arange(items.size), deg)
        within = np.arange(row.size) - np.repeat(np.cumsum(deg) - deg, deg)
        values = idx.value[idx.item_pos[idx.item_ptr[items[row]] + within]]
        np.add.at(p, (row, values), 1.0 / deg[row])
        p[deg == 0, idx.all] = 1.0
        return p


class AttributeStratifiedSampler(_ValueSampler):
    """``stratified`` with ``by: attribute``: values in set shares (see the module docstring)."""

    def __init__(self, cfg: Any, train: Interactions, attributes: pl.DataFrame | None) -> None:
        self.family = cfg.family
        super().__init__(cfg, train, attributes)
        names = self.index.names
        chosen = list(cfg.attribute_values) or names
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise SamplingError(
                f"sampler.stratified.attribute_values names {unknown}, which no item has in "
                f"family {self.family!r} (values: {names}); fix the list or leave it empty"
            )
        shares = np.asarray(cfg.attribute_shares or [1.0] * len(chosen), np.float64)
        self.shares = np.zeros(self.index.all + 1)
        self.shares[[names.index(v) for v in chosen]] = shares / shares.sum()
        self.cum = np.cumsum(self.shares)

    def pick(self, rng: np.random.Generator, pos_items: np.ndarray, n_neg: int) -> np.ndarray:
        u = rng.random((pos_items.size, n_neg)) * self.cum[-1]
        return np.minimum(np.searchsorted(self.cum, u, side="right"), self.index.all - 1)

    def value_probabilities(self, pos_items: np.ndarray) -> np.ndarray:
        return np.repeat(self.shares[None, :], np.asarray(pos_items).size, axis=0)

    def describe(self) -> dict[str, Any]:
        shares = dict(zip(self.index.names, self.shares[:-1].tolist(), strict=True))
        return {**super().describe(), "by": "attribute", "value_shares": shares}
