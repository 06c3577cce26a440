"""Exact, vectorized draws of items a user has not interacted with.

Every data-side sampler is a *proposal* (uniform over the catalog, a weighted table, a
popularity band, ...) run through one engine, :func:`resolve`:

1. draw a proposal for every cell ``[B, n_neg]`` at once; with replacement, the rows of
   users whose positives hold at least :data:`DENSE_AT` of the proposal's mass are drawn
   instead from a table of their non-positives (``direct``: a uniform rank mapped through
   the user's complement, or the inverse CDF of the proposal's weights over it), with no
   rejection at all;
2. reject the cells that hold a positive (one gather from the block's packed bitmap,
   see :mod:`negsamp.samplers._local`) and redraw only those, for a few rounds;
3. finish whatever is left with the proposal's *exact* draw (a rank mapping or a
   bisection over the user's non-positives), so it terminates for every user. Rounds
   stop early once a round resolves less than half of what is left (cells of users
   whose positives hold most of the proposal's mass): those go exact at once.

Rejection from the proposal is exact: a redrawn cell is distributed as the proposal
restricted to the user's non-positives, and so is the exact draw, whenever it takes over. Without replacement the columns are resolved in
order, each also rejecting the items already in its row, which is successive sampling
(the distribution Efraimidis-Spirakis keys give) and for uniform a uniform random subset.
No Python loop runs per user or per positive; loops run over rounds and columns only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers._local import LocalPositives
from negsamp.samplers.cdf import DiscreteTable

ROUNDS = 16  # redraw rounds before the exact fallback
# Sampling with replacement draws the rows of users whose positives hold at least this
# share of the proposal's mass (for uniform: of the catalog) from a table of their
# non-positives, with no rejection (``Proposal.direct``): measured per cell on 256-user
# blocks of 2k and 20k items, the table (one O(n_items) build per such user, then one
# gather or inverse-CDF search per cell) costs 30-45 ns uniform, 100-190 ns popularity,
# while rejection costs 1 / (1 - share) proposals per cell: more from a share of about 0.5
# (uniform 29-32 vs 33-36 ns there, popularity 144-238 vs 121-178 ns). Changing it
# changes the bytes, so it is part of ALGORITHM.
DENSE_AT = 0.5
# The version of the draws' algorithm, recorded in each pool's manifest: same seed and
# version, same bytes. 2 (#17): dense users' rows drawn from their complement table.
ALGORITHM = 2
EMPTY = (
    "they have interacted with every item: remove such users from the data, or use a larger catalog"
)


class SamplingError(ValueError):
    """A request that cannot be satisfied (e.g. fewer candidates than ``n_neg``)."""


@dataclass
class DrawStats:
    """Counters a sampler accumulates over its calls (reported in the pool manifest)."""

    draws: int = 0  # proposals drawn, first draws and redraws
    rejected: int = 0  # proposals rejected as a positive (or, without replacement, a repeat)
    exact: int = 0  # cells finished by the exact fallback after ROUNDS redraws
    direct: int = 0  # cells of dense users drawn from their complement, never rejected

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / self.draws if self.draws else 0.0


def no_exclusions(n_users: int, n_items: int) -> Interactions:
    """An empty CSR: what a sampler is handed for ``exclude: none`` (it may return positives)."""
    e = np.zeros(0, np.int64)
    return Interactions.from_arrays(e, e, n_users, n_items)


def available(pos: Interactions, users: np.ndarray) -> np.ndarray:
    """int64 [B]: how many items each user has not interacted with."""
    users = np.asarray(users, np.int64)
    return pos.n_items - (pos.indptr[users + 1] - pos.indptr[users])


def capacity_error(
    users: np.ndarray,
    avail: np.ndarray,
    need: int,
    n_items: int,
    what: str,
    *,
    setting: str = "n_neg",
    original: np.ndarray | None = None,
    fix: str = "sample with replacement",
    empty: str = EMPTY,
) -> None:
    """Raise :class:`SamplingError` naming the users whose ``avail`` is below ``need``.

    ``setting``: the key whose value is ``need`` (e.g. ``evaluate.n_eval_neg``), named in
    the message with the largest value every user can satisfy; ``original``: the users'
    original ids indexed by internal id (the message then names the file's id);
    ``fix``: the other way out, after lowering ``setting``; ``empty``: what to do about a
    user with nothing left at all.
    """
    bad = np.flatnonzero(avail < need)
    if not bad.size:
        return
    worst = bad[np.argmin(avail[bad])]
    user = int(users[worst])
    who = f"user {original[user]!r}" if original is not None else f"user {user}"
    left, n_users = int(avail[worst]), np.unique(users[bad]).size
    if original is not None:
        who += f" (internal id {user})"
    if left == 0:
        raise SamplingError(
            f"{what}: {who} has 0 of {n_items} items left to draw from ({n_users} user(s) "
            f"like this), so no negative can be drawn for them; {empty}"
        )
    raise SamplingError(
        f"{what}: {setting}={need} but {who} has {left} of {n_items} items left to draw "
        f"from ({n_users} user(s) short); set {setting} to at most {int(avail.min())}, or {fix}"
    )


def check_capacity(
    pos: Interactions,
    users: np.ndarray,
    n_neg: int,
    replace: bool,
    what: str,
    *,
    setting: str = "n_neg",
    original: np.ndarray | None = None,
    fix: str = "sample with replacement",
) -> None:
    """Raise a clear error when some user cannot get ``n_neg`` negatives (see capacity_error)."""
    users = np.asarray(users, np.int64)
    avail = available(pos, users)
    need = 1 if replace else n_neg
    capacity_error(
        users, avail, need, pos.n_items, what, setting=setting, original=original, fix=fix
    )


class Proposal(Protocol):
    """A distribution to draw cells from, and its exact restriction to a user's non-positives."""

    def first(self, rng: np.random.Generator, n_rows: int, n_neg: int) -> np.ndarray:
        """int32 [n_rows, n_neg]: the first draw of every cell."""
        ...

    def redraw(self, rng: np.random.Generator, last: np.ndarray) -> np.ndarray:
        """int32 [k]: fresh proposals for cells whose last (rejected) draw was ``last``."""
        ...

    # Optional, as a pair (resolve uses them for the rows of the dense users):
    # dense_users(local) -> bool [span], the local users whose positives hold at least
    # DENSE_AT of the proposal's mass (per user, not per row: B is ~100x span in a block);
    # direct(rng, local, rows [k], n_neg) -> int [k, n_neg], draws from the proposal
    # restricted to each row's non-positives, from its user's complement (no rejection).

    def exact(
        self,
        rng: np.random.Generator,
        local: LocalPositives,
        rows: np.ndarray,
        last: np.ndarray,
        taken: np.ndarray | None,
    ) -> np.ndarray:
        """int [k]: a draw from the proposal restricted to non-positive, non-``taken`` items.

        rows: int [k] batch rows; last: int32 [k] the cells' last rejected draws;
        taken: int [k, t] the row's earlier columns (without replacement) or None.
        """
        ...


def resolve(
    local: LocalPositives,
    prop: Proposal,
    n_neg: int,
    rng: np.random.Generator,
    replace: bool,
    stats: DrawStats | None = None,
    rounds: int = ROUNDS,
) -> np.ndarray:
    """int32 [B, n_neg]: draws from ``prop`` restricted to each row's non-positives (see module)."""
    b = local.lu.size
    out = prop.first(rng, b, n_neg)
    st = DrawStats(draws=out.size)
    flat_out = out.reshape(-1)
    if replace:
        flat = local.hit_index(out)  # the rejected cells, flat
        dense_users = getattr(prop, "dense_users", None)  # a proposal without ``direct``: None
        dense_user = None if dense_users is None else dense_users(local)
        if dense_user is not None and dense_user.any():
            # no rejection for them: the draws from their complement's table
            dense = np.flatnonzero(dense_user[local.lu])
            out[dense] = prop.direct(rng, local, dense, n_neg)
            is_dense = np.zeros(b, bool)
            is_dense[dense] = True
            flat = flat[~is_dense[flat // n_neg]]
            st.direct += dense.size * n_neg
        st.rejected += flat.size
        for r in range(rounds):
            if not flat.size:
                break
            new = prop.redraw(rng, flat_out[flat])
            flat_out[flat] = new
            flat = flat[local.hit_rows(flat // n_neg, new)]
            st.draws += new.size
            st.rejected += flat.size
            if r and 2 * flat.size > new.size:  # mostly hopeless cells left: go exact
                break
        if flat.size:
            flat_out[flat] = prop.exact(rng, local, flat // n_neg, flat_out[flat], None)
            st.exact += flat.size
    else:
        hit = local.hit_rows(None, out)
        for j in range(n_neg):
            bad = hit[:, j] | (out[:, :j] == out[:, j : j + 1]).any(axis=1)
            rows = np.flatnonzero(bad)
            st.rejected += rows.size
            for r in range(rounds):
                if not rows.size:
                    break
                new = prop.redraw(rng, out[rows, j])
                out[rows, j] = new
                again = local.hit_rows(rows, new) | (out[rows, :j] == new[:, None]).any(1)
                st.draws += rows.size
                rows = rows[again]
                st.rejected += rows.size
                if r and 2 * rows.size > new.size:  # mostly hopeless cells left: go exact
                    break
            if rows.size:
                out[rows, j] = prop.exact(rng, local, rows, out[rows, j], out[rows, :j])
                st.exact += rows.size
    if stats is not None:
        stats.draws += st.draws
        stats.rejected += st.rejected
        stats.exact += st.exact
        stats.direct += st.direct
    return out


class UniformProposal:
    """Uniform over the catalog; exact draws map a uniform rank over the non-positives."""

    def dense_users(self, local: LocalPositives) -> np.ndarray:
        """bool [span]: the local users holding at least DENSE_AT of the catalog."""
        return local.local_deg / self.n_items >= DENSE_AT

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def first(self, rng: np.random.Generator, n_rows: int, n_neg: int) -> np.ndarray:
        return rng.integers(0, self.n_items, (n_rows, n_neg), dtype=np.int32)

    def redraw(self, rng: np.random.Generator, last: np.ndarray) -> np.ndarray:
        return rng.integers(0, self.n_items, last.size, dtype=np.int32)

    def direct(self, rng, local, rows, n_neg):  # noqa: ANN001, ANN201 - see Proposal
        lus, which = np.unique(local.lu[rows], return_inverse=True)
        items, offsets = local.complement(lus)
        size = np.diff(offsets)[which]
        # the rank as the exact fallback draws it: floor(U * size), U in [0, 1) (53 bits)
        ranks = (rng.random((rows.size, n_neg)) * size[:, None]).astype(np.int64)
        return items[offsets[which][:, None] + ranks]

    def exact(self, rng, local, rows, last, taken):  # noqa: ANN001, ANN201 - see Proposal
        t = 0 if taken is None else taken.shape[1]
        avail = self.n_items - local.deg[rows] - t
        ranks = (rng.random(rows.size) * avail).astype(np.int64)
        return local.select(local.lu[rows], ranks, taken)


class WeightedProposal:
    """P(i) proportional to ``table`` weights; exact draws bisect the user's non-positive mass."""

    def dense_users(self, local: LocalPositives) -> np.ndarray:
        """bool [span]: the local users whose positives hold at least DENSE_AT of the weight.

        Only users whose ``deg`` heaviest items could reach it (a bound, with a margin far
        above rounding) get their positives' weight summed: usually none, so the block's
        cumulative positive weight is not built for this.
        """
        t = self.table
        may = t.heaviest(local.local_deg) >= (DENSE_AT - 1e-6) * t.total
        if not may.any():
            return may
        every = np.arange(local.span)
        return 1.0 - local.remaining_weight(every, t.weights, t.total) / t.total >= DENSE_AT

    def __init__(self, table: DiscreteTable) -> None:
        self.table = table

    def first(self, rng: np.random.Generator, n_rows: int, n_neg: int) -> np.ndarray:
        return self.table.draw(rng, (n_rows, n_neg))

    def redraw(self, rng: np.random.Generator, last: np.ndarray) -> np.ndarray:
        return self.table.draw(rng, last.size)

    def direct(self, rng, local, rows, n_neg):  # noqa: ANN001, ANN201 - see Proposal
        """Inverse CDF over each user's corrected table: its non-positives' weights."""
        lus, which = np.unique(local.lu[rows], return_inverse=True)
        items, offsets = local.complement(lus)
        w = self.table.weights[items]
        cum = np.cumsum(w)
        base = np.concatenate(([0.0], cum))[offsets]  # weight before each user's segment
        mass = base[1:] - base[:-1]
        none = np.flatnonzero(mass <= self.table.total * 1e-12)
        if none.size:
            u = int(lus[none[0]] + local.lo)
            raise SamplingError(
                f"user {u} has no item of non-zero sampling weight left (every such item is a "
                "positive); use a sampler with full support (uniform, or popularity with "
                "alpha=0)"
            )
        # the last item of non-zero weight in each segment: where rounding may overshoot to
        idx = np.where(w > 0, np.arange(w.size), -1)
        last = np.maximum.accumulate(idx)[offsets[1:] - 1]
        target = base[:-1][which][:, None] + rng.random((rows.size, n_neg)) * mass[which][:, None]
        at = np.searchsorted(cum, target, side="right")
        at = np.minimum(at, last[which][:, None])
        return items[at]

    def exact(self, rng, local, rows, last, taken):  # noqa: ANN001, ANN201 - see Proposal
        t, w = self.table, self.table.weights
        lu = local.lu[rows]
        left = local.remaining_weight(lu, w, t.total)
        if taken is not None and taken.shape[1]:
            left = left - w[taken].sum(axis=1)
        empty = np.flatnonzero(left <= t.total * 1e-12)
        if empty.size:  # only users whose rejection rounds all failed can get here
            u = int(local.lu[rows[empty[0]]] + local.lo)
            raise SamplingError(
                f"user {u} has no item of non-zero sampling weight left (every such item is a "
                "positive" + ("" if taken is None else " or already in the row") + "); use a "
                "sampler with full support (uniform, or popularity with alpha=0), or sample "
                "with replacement"
            )
        out = np.empty(rows.size, np.int64)
        todo = np.arange(rows.size)
        for _ in range(8):  # redo the (measure-zero) draws rounding puts on an excluded item
            tk = None if taken is None else taken[todo]
            got = local.select_weighted(lu[todo], rng.random(todo.size) * left[todo], w, t.cum, tk)
            out[todo] = got
            bad = local.hit(lu[todo], got) | (w[got] == 0)
            if tk is not None and tk.shape[1]:
                bad |= (tk == got[:, None]).any(axis=1)
            todo = todo[bad]
            if not todo.size:
                return out
        raise RuntimeError("weighted bisection kept landing on excluded items (rounding)")


def uniform_excluding(
    pos: Interactions,
    users: np.ndarray,
    n_neg: int,
    rng: np.random.Generator,
    replace: bool = True,
    stats: DrawStats | None = None,
) -> np.ndarray:
    """int32 [B, n_neg]: items drawn uniformly from each user's non-positives.

    Without replacement the items of a row are distinct (a uniform random subset).
    """
    users = np.asarray(users, np.int64)
    local = LocalPositives(pos, users)
    need = 1 if replace else n_neg
    if users.size and pos.n_items - int(local.local_deg.max()) < need:  # name who is short
        capacity_error(users, pos.n_items - local.deg, need, pos.n_items, "uniform sampling")
    return resolve(local, UniformProposal(pos.n_items), n_neg, rng, replace, stats)


def weighted_excluding(
    pos: Interactions,
    users: np.ndarray,
    n_neg: int,
    weights: np.ndarray | DiscreteTable,
    rng: np.random.Generator,
    stats: DrawStats | None = None,
    rejection_rounds: int = ROUNDS,
    replace: bool = True,
) -> np.ndarray:
    """int32 [B, n_neg]: P(i | u) proportional to ``weights[i]`` over u's non-positives.

    weights: float64 [n_items] >= 0, or a prebuilt :class:`DiscreteTable` (build it once
    per sampler: it is O(n_items)). Without replacement: successive sampling within a row.
    A user left with no non-positive of non-zero weight raises :class:`SamplingError`
    (checked where it can only show up: in the exact fallback).
    """
    users = np.asarray(users, np.int64)
    table = weights if isinstance(weights, DiscreteTable) else DiscreteTable(weights)
    local = LocalPositives(pos, users)
    need = 1 if replace else n_neg
    if users.size and pos.n_items - int(local.local_deg.max()) < need:  # name who is short
        capacity_error(users, pos.n_items - local.deg, need, pos.n_items, "weighted sampling")
    return resolve(local, WeightedProposal(table), n_neg, rng, replace, stats, rejection_rounds)


def uniform_ranks_to_items(pos: Interactions, users: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """int32 like ``ranks`` [B, k]: the ``ranks``-th (0-based) non-positive item of each user."""
    users = np.asarray(users, np.int64)
    local = LocalPositives(pos, users)
    ranks = np.asarray(ranks, np.int64)
    lu = np.broadcast_to(local.lu.reshape(-1, *([1] * (ranks.ndim - 1))), ranks.shape)
    return local.select(lu.reshape(-1), ranks.reshape(-1)).reshape(ranks.shape).astype(np.int32)


def floyd(avail: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 [B, n]: n distinct values in [0, avail[b]) per row (Floyd), looping over n only."""
    b = avail.size
    out = np.empty((b, n), np.int64)
    for j in range(n):
        hi = avail - n + j  # inclusive upper bound for this step
        t = np.floor(rng.random(b) * (hi + 1)).astype(np.int64)
        seen = (out[:, :j] == t[:, None]).any(axis=1) if j else np.zeros(b, bool)
        out[:, j] = np.where(seen, hi, t)
    return out
