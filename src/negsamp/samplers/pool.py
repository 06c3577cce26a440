"""Negative pools: the training pool per configuration, its audit, and the shared evaluation candidates.

Sampling is a pure function of (CSR, user range, seed, config): the rows of each block
of :data:`USER_BLOCK` consecutive user ids get their own generator, the ``POOL`` (or
``EVAL_CANDIDATES``) stream of :mod:`negsamp.rng` keyed by ``(epoch, block)``. So a pool built in shards of whole blocks
(:func:`shard_ranges`) and merged (:func:`merge_shards`) has the same bytes as one built
in one shot, on any machine, with any number of processes.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from negsamp.interactions import Interactions
from negsamp.rng import Stream, numpy_rng
from negsamp.samplers import Sampler
from negsamp.samplers._local import LocalPositives
from negsamp.samplers.exact import check_capacity, uniform_excluding
from negsamp.samplers.stats import plot_negative_popularity, pool_statistics

__all__ = [
    "USER_BLOCK",
    "PoolAuditError",
    "audit_pool",
    "candidates_frame",
    "eval_candidates",
    "merge_shards",
    "plot_negative_popularity",
    "pool_frame",
    "pool_negatives",
    "pool_statistics",
    "sample_rows",
    "shard_ranges",
    "training_pool",
]

log = logging.getLogger(__name__)

USER_BLOCK = 256  # users per generator: part of the format, changing it changes the bytes


class PoolAuditError(ValueError):
    """A pool holds a negative that is a positive of its row's user."""


def _runs(key: np.ndarray) -> np.ndarray:
    """int64 [k + 1]: boundaries of the runs of equal values in ``key``."""
    cut = np.flatnonzero(key[1:] != key[:-1]) + 1
    return np.concatenate(([0], cut, [key.size])).astype(np.int64)


def sample_rows(
    sampler: Sampler,
    exclude: Interactions,
    users: np.ndarray,
    pos_items: np.ndarray,
    n_neg: int,
    seed: int,
    epoch: int,
    bar: tqdm | None = None,
) -> np.ndarray:
    """int32 [n, n_neg]: one epoch of negatives for rows sorted by user, block by block.

    users, pos_items: int [n], ``users`` non-decreasing (CSR row order).
    """
    users = np.asarray(users)
    if users.size and (np.diff(users) < 0).any():
        raise ValueError("sample_rows needs rows sorted by user (CSR order)")
    out = np.empty((users.size, n_neg), np.int32)
    block = users // USER_BLOCK
    bounds = _runs(block) if users.size else np.zeros(1, np.int64)
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rng = numpy_rng(seed, Stream.POOL, epoch, int(block[a]))
        out[a:b] = sampler.sample(exclude, users[a:b], pos_items[a:b], n_neg, rng)
        if bar is not None:
            bar.update()
    return out


def shard_ranges(n_users: int, n_shards: int) -> list[tuple[int, int]]:
    """``n_shards`` contiguous user ranges [lo, hi) covering all users, on block boundaries."""
    blocks = -(-n_users // USER_BLOCK)
    cuts = [min(n_users, (blocks * k // n_shards) * USER_BLOCK) for k in range(n_shards + 1)]
    return [(cuts[k], cuts[k + 1]) for k in range(n_shards)]


def _pool_rows(train: Interactions, user_range: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
    """(users int32, pos_items, degrees) of the training rows of ``user_range``, CSR order."""
    lo, hi = user_range if user_range is not None else (0, train.n_users)
    if (
        not (0 <= lo <= hi <= train.n_users)
        or lo % USER_BLOCK
        or (hi % USER_BLOCK and hi != train.n_users)
    ):
        raise ValueError(
            f"user_range {(lo, hi)} must lie in [0, {train.n_users}] on multiples of "
            f"USER_BLOCK={USER_BLOCK} (or end at n_users); use shard_ranges()"
        )
    a, b = int(train.indptr[lo]), int(train.indptr[hi])
    deg = np.diff(train.indptr[lo : hi + 1])
    users = np.repeat(np.arange(lo, hi, dtype=np.int32), deg)
    return users, train.indices[a:b], deg


def pool_negatives(
    sampler: Sampler,
    train: Interactions,
    exclude: Interactions,
    user_range: tuple[int, int] | None,
    n_neg: int,
    pool_epochs: int,
    seed: int,
) -> list[np.ndarray]:
    """The negatives of :func:`training_pool`, one int32 [rows of ``user_range``, n_neg]
    array per epoch (rows in CSR order): what a shard computes and ships back."""
    users, pos, deg = _pool_rows(train, user_range)
    lo = user_range[0] if user_range is not None else 0
    check_capacity(exclude, lo + np.flatnonzero(deg > 0), n_neg, replace=True, what="training pool")
    n_blocks = _runs(users // USER_BLOCK).size - 1 if users.size else 0
    total = pool_epochs * n_blocks
    with tqdm(total=total, desc="sample negatives", unit="block", disable=total < 64) as bar:
        return [
            sample_rows(sampler, exclude, users, pos, n_neg, seed, e, bar)
            for e in range(pool_epochs)
        ]


def pool_frame(
    train: Interactions,
    negs: list[np.ndarray],
    n_neg: int,
    user_range: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """The pool frame of ``user_range`` from its per-epoch negatives (:func:`pool_negatives`,
    or the shards' arrays concatenated in user order: the same frame, the same bytes)."""
    users, pos, _ = _pool_rows(train, user_range)
    frames = [_frame(users, pos, n, epoch=e) for e, n in enumerate(negs)]
    return pl.concat(frames) if frames else _frame(users, pos, np.zeros((0, n_neg), np.int32), 0)


def training_pool(
    sampler: Sampler,
    train: Interactions,
    n_neg: int,
    pool_epochs: int,
    seed: int,
    *,
    exclude: Interactions | None = None,
    user_range: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """``n_neg`` negatives per training positive of users in ``user_range``, for each epoch.

    exclude: the positives never to return (default ``train``; the stage passes train+valid
    or :func:`~negsamp.samplers.no_exclusions` per ``sampler.exclude``). user_range: [lo, hi)
    on :data:`USER_BLOCK` boundaries (or hi = n_users); see :func:`shard_ranges`.
    Returns columns user int32, pos_item int32, epoch int16, neg_items array[int32, n_neg],
    ordered by (epoch, user, pos_item).
    """
    exclude = train if exclude is None else exclude
    negs = pool_negatives(sampler, train, exclude, user_range, n_neg, pool_epochs, seed)
    return pool_frame(train, negs, n_neg, user_range)


def merge_shards(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The one-shot pool from shard pools: ordered by (epoch, user, pos_item)."""
    return pl.concat(frames).sort(["epoch", "user", "pos_item"], maintain_order=True)


def _frame(users: np.ndarray, pos: np.ndarray, negs: np.ndarray, epoch: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": pl.Series(users, dtype=pl.Int32),
            "pos_item": pl.Series(pos, dtype=pl.Int32),
            "epoch": pl.Series(np.full(users.size, epoch, np.int16), dtype=pl.Int16),
            "neg_items": pl.Series(negs, dtype=pl.Array(pl.Int32, negs.shape[1])),
        }
    )


def audit_pool(pool: pl.DataFrame, exclude: Interactions, show: int = 10) -> None:
    """Raise :class:`PoolAuditError` if any negative is a positive of its row's user.

    An empty ``exclude`` (``exclude: none``) passes. Checked block by block against the
    same packed bitmaps the samplers use, so auditing costs about as much as sampling.
    """
    if exclude.nnz == 0 or pool.height == 0:
        return
    users = pool["user"].to_numpy().astype(np.int64)
    negs = pool["neg_items"].to_numpy()
    block = users // USER_BLOCK
    order = None
    if (np.diff(block) < 0).sum() > users.size // 1000 + 16:  # not in pool order: sort once
        order = np.argsort(users, kind="stable")
        users, negs, block = users[order], negs[order], block[order]
    bounds = _runs(block)
    bad_rows, bad_cols = [], []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        local = LocalPositives(exclude, users[a:b])
        r, c = np.nonzero(local.hit_rows(None, negs[a:b]))
        bad_rows.append(r + a)
        bad_cols.append(c)
    rows, cols = np.concatenate(bad_rows), np.concatenate(bad_cols)
    if not rows.size:
        return
    src = rows if order is None else order[rows]
    found = negs[rows, cols]
    ex = pool[src[:show].tolist()].select("user", "pos_item", "epoch")
    lines = [
        f"  user {u}, pos_item {p}, epoch {e}: negative {int(i)} is a positive of the user"
        for (u, p, e), i in zip(ex.iter_rows(), found[:show].tolist(), strict=True)
    ]
    raise PoolAuditError(
        f"pool audit failed: {rows.size} negative(s) in {np.unique(src).size} row(s) are "
        f"positives of their user; first {len(lines)}:\n" + "\n".join(lines) + "\n"
        "the sampler is not exact for this exclude set: rebuild the pool (do not train on it)"
    )


def eval_candidates(
    known: Interactions, test: pl.DataFrame, n_eval_neg: int, seed: int
) -> pl.DataFrame:
    """``n_eval_neg`` distinct uniform negatives per test row (the NCF protocol).

    Drawn per user block like the training pool (a generator per block of user ids), so
    the rows of a user get the same candidates whatever else is in ``test``.
    known: every positive of every user (train, valid and test), so a candidate is never
    an item the user interacted with. Returns user int32, item int32 (the held-out item),
    candidates array[int32, n_eval_neg], in the order of ``test``.
    """
    users = test["user"].to_numpy().astype(np.int64)
    check_capacity(known, users, n_eval_neg, replace=False, what="evaluation candidates")
    negs = np.empty((users.size, n_eval_neg), np.int32)
    order = np.argsort(users, kind="stable")  # by user, so each block's positives are local
    su = users[order]
    block = su // USER_BLOCK
    bounds = _runs(block) if su.size else np.zeros(1, np.int64)
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rng = numpy_rng(seed, Stream.EVAL_CANDIDATES, 0, int(block[a]))  # one epoch
        negs[order[a:b]] = uniform_excluding(known, su[a:b], n_eval_neg, rng, replace=False)
    return candidates_frame(test, negs)


def candidates_frame(test: pl.DataFrame, negs: np.ndarray) -> pl.DataFrame:
    """The candidates file's frame: user, item of ``test`` and ``negs`` int32 [rows, m]."""
    return pl.DataFrame(
        {
            "user": test["user"].cast(pl.Int32),
            "item": test["item"].cast(pl.Int32),
            "candidates": pl.Series(negs, dtype=pl.Array(pl.Int32, negs.shape[1])),
        }
    )
