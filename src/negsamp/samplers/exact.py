"""Exact, vectorized draws of items a user has not interacted with.

Two primitives, both free of any Python loop per user or per draw:

* :func:`uniform_excluding` maps a uniform rank ``r`` in ``[0, n_items - deg(u))``
  to the ``r``-th non-positive item of ``u`` with one ``searchsorted`` (the
  "skip the positives below" trick), so no draw is ever rejected.
* :func:`weighted_excluding` draws from ``w`` restricted to the user's
  non-positives: a few rounds of rejection (cheap while positives hold little of
  the mass), then an exact vectorized bisection on the user's cumulative
  non-positive weight for whatever is left, so it terminates for every user.

Without replacement (distinct items within a row), duplicates are redrawn a few
rounds and the remaining rows are finished with Floyd's algorithm, vectorized
over rows and looping only over the ``n_neg`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from negsamp.interactions import Interactions


class SamplingError(ValueError):
    """A request that cannot be satisfied (e.g. fewer candidates than ``n_neg``)."""


@dataclass
class DrawStats:
    draws: int = 0
    rejected: int = 0

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / self.draws if self.draws else 0.0


def _skip_keys(pos: Interactions) -> np.ndarray:
    """int64 [nnz]: u * (n_items + 1) + (p_k - k), non-decreasing over the whole CSR."""
    k = np.arange(pos.nnz, dtype=np.int64) - np.repeat(pos.indptr[:-1], pos.user_degrees())
    return pos.rows().astype(np.int64) * (pos.n_items + 1) + pos.indices.astype(np.int64) - k


def available(pos: Interactions, users: np.ndarray) -> np.ndarray:
    """int64 [B]: how many items each user has not interacted with."""
    return pos.n_items - pos.user_degrees()[users]


def check_capacity(
    pos: Interactions, users: np.ndarray, n_neg: int, replace: bool, what: str
) -> None:
    """Raise a clear error when some user cannot get ``n_neg`` negatives."""
    avail = available(pos, users)
    need = 1 if replace else n_neg
    bad = np.flatnonzero(avail < need)
    if bad.size:
        u = int(users[bad[0]])
        raise SamplingError(
            f"{what}: {np.unique(users[bad]).size} user(s) have fewer than {need} items they have "
            f"not interacted with (first: user {u} has {int(avail[bad[0]])} of "
            f"{pos.n_items}); lower n_neg, sample with replacement, or drop users who have "
            "seen (almost) every item"
        )


def uniform_ranks_to_items(pos: Interactions, users: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """int32 like ``ranks``: the ``ranks``-th (0-based) non-positive item of each user."""
    keys = _skip_keys(pos)
    u = users.astype(np.int64).reshape(users.shape + (1,) * (ranks.ndim - users.ndim))
    q = u * (pos.n_items + 1) + ranks
    below = np.searchsorted(keys, q, side="right") - pos.indptr[u]
    return (ranks + below).astype(np.int32)


def _draw_uniform_ranks(
    avail: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    return np.floor(rng.random(shape) * avail.reshape(-1, *([1] * (len(shape) - 1)))).astype(
        np.int64
    )


def uniform_excluding(
    pos: Interactions,
    users: np.ndarray,
    n_neg: int,
    rng: np.random.Generator,
    replace: bool = True,
    stats: DrawStats | None = None,
) -> np.ndarray:
    """int32 [B, n_neg]: items drawn uniformly from each user's non-positives."""
    users = np.asarray(users, np.int64)
    avail = available(pos, users)
    ranks = _draw_uniform_ranks(avail, (users.size, n_neg), rng)
    if not replace:
        ranks = _dedupe_ranks(ranks, avail, rng)
    if stats is not None:
        stats.draws += ranks.size
    return uniform_ranks_to_items(pos, users, ranks)


def _dedupe_ranks(
    ranks: np.ndarray, avail: np.ndarray, rng: np.random.Generator, rounds: int = 8
) -> np.ndarray:
    """Make each row's ranks distinct: redraw duplicates, then Floyd for stubborn rows."""
    for _ in range(rounds):
        dup = _duplicate_mask(ranks)
        if not dup.any():
            return ranks
        rows = np.nonzero(dup)[0]
        ranks[dup] = np.floor(rng.random(rows.size) * avail[rows]).astype(np.int64)
    bad_rows = np.flatnonzero(_duplicate_mask(ranks).any(axis=1))
    if bad_rows.size:
        ranks[bad_rows] = _floyd(avail[bad_rows], ranks.shape[1], rng)
    return ranks


def _duplicate_mask(ranks: np.ndarray) -> np.ndarray:
    """bool [B, n]: True for every occurrence of a value after its first in the row."""
    order = np.argsort(ranks, axis=1, kind="stable")
    srt = np.take_along_axis(ranks, order, axis=1)
    dup_sorted = np.zeros_like(srt, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    out = np.zeros_like(dup_sorted)
    np.put_along_axis(out, order, dup_sorted, axis=1)
    return out


def _floyd(avail: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 [B, n]: n distinct values in [0, avail[b]) per row (Floyd), looping over n only."""
    b = avail.size
    out = np.empty((b, n), np.int64)
    for j in range(n):
        hi = avail - n + j  # inclusive upper bound for this step
        t = np.floor(rng.random(b) * (hi + 1)).astype(np.int64)
        seen = (out[:, :j] == t[:, None]).any(axis=1) if j else np.zeros(b, bool)
        out[:, j] = np.where(seen, hi, t)
    return out


def weighted_excluding(
    pos: Interactions,
    users: np.ndarray,
    n_neg: int,
    weights: np.ndarray,
    rng: np.random.Generator,
    stats: DrawStats | None = None,
    rejection_rounds: int = 4,
) -> np.ndarray:
    """int32 [B, n_neg]: items drawn with P(i | u) proportional to ``weights[i]`` over u's non-positives.

    weights: float64 [n_items], non-negative. With replacement within a row.
    """
    users = np.asarray(users, np.int64)
    w = np.asarray(weights, np.float64)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    pos_w = np.concatenate([[0.0], np.cumsum(w[pos.indices])])
    remaining = cum[-1] - (pos_w[pos.indptr[users + 1]] - pos_w[pos.indptr[users]])
    empty = np.flatnonzero(remaining <= cum[-1] * 1e-12)
    if empty.size:
        raise SamplingError(
            f"user {int(users[empty[0]])} has interacted with every item of non-zero sampling "
            "weight; use a sampler with full support (uniform, or popularity with alpha=0)"
        )
    b = users.size
    out = np.searchsorted(cum, rng.random((b, n_neg)) * cum[-1], side="right") - 1
    out = np.minimum(out, pos.n_items - 1)
    hit = pos.contains(users[:, None], out)
    n_draws, n_rej = out.size, int(hit.sum())
    for _ in range(rejection_rounds):
        if not hit.any():
            break
        r, c = np.nonzero(hit)
        out[r, c] = np.minimum(
            np.searchsorted(cum, rng.random(r.size) * cum[-1], side="right") - 1, pos.n_items - 1
        )
        hit[r, c] = pos.contains(users[r], out[r, c])
        n_draws += r.size
        n_rej += int(hit[r, c].sum())
    if hit.any():
        r, c = np.nonzero(hit)
        out[r, c] = _bisect_weighted(pos, users[r], rng.random(r.size) * remaining[r], cum, pos_w)
        n_draws += r.size
    if stats is not None:
        stats.draws += n_draws
        stats.rejected += n_rej
    return out.astype(np.int32)


def _bisect_weighted(
    pos: Interactions, users: np.ndarray, target: np.ndarray, cum: np.ndarray, pos_w: np.ndarray
) -> np.ndarray:
    """Smallest item i with C_u(i) > target, where C_u(i) = weight of u's non-positives <= i."""
    lo = np.zeros(users.size, np.int64)
    hi = np.full(users.size, pos.n_items - 1, np.int64)
    start = pos_w[pos.indptr[users]]
    while (lo < hi).any():
        mid = (lo + hi) // 2
        idx = np.searchsorted(pos._keys, users * pos.n_items + mid, side="right")
        c = cum[mid + 1] - (pos_w[idx] - start)
        go_left = c > target
        hi = np.where(go_left, mid, hi)
        lo = np.where(go_left, lo, mid + 1)
    return lo
