"""Sharded sampling on Ray: the training pool and the evaluation candidates by user range.

Sampling is defined per block of :data:`~negsamp.samplers.pool.USER_BLOCK` user ids (each
block its own generator of the seed), so ranges of whole blocks
(:func:`~negsamp.samplers.pool.shard_ranges`) sampled apart and concatenated in user order
are the one-shot result, byte for byte, whatever the number of shards or workers.

The positives (the training CSR, the exclude CSR) and the sampler's other inputs go to the
object store once (``ray.put``); each task gets their references and its range, builds the
sampler and returns its negatives, one int32 array per epoch, plus what its sampler counted
(draws, rejections, per-band cells...), which the driver adds into its own sampler so the
manifest's statistics are the one-shot run's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from negsamp.cluster import runtime
from negsamp.config.run import RayCfg
from negsamp.interactions import Interactions
from negsamp.samplers import Sampler, build_sampler
from negsamp.samplers.exact import DrawStats
from negsamp.samplers.pool import (
    candidates_frame,
    eval_candidates,
    pool_frame,
    pool_negatives,
    shard_ranges,
)

log = logging.getLogger(__name__)

Counters = dict[str, Any]  # dotted attribute path -> int or int array


def _counted(obj: Any, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple]:
    """(path, value) of the integer state of a sampler: its own ints and int arrays, its
    :class:`DrawStats` and those of a wrapped ``inner`` sampler (each object once: a
    wrapper shares its inner sampler's stats)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for name, v in vars(obj).items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int | np.integer) or (isinstance(v, np.ndarray) and v.dtype.kind in "iu"):
            yield prefix + name, v
        elif isinstance(v, DrawStats) or name == "inner":
            yield from _counted(v, f"{prefix}{name}.", seen)


def counters(sampler: Sampler) -> Counters:
    """A copy of the sampler's integer state (:func:`_counted`)."""
    return {k: np.array(v, copy=True) for k, v in _counted(sampler)}


def grown(before: Counters, after: Counters) -> Counters:
    """What sampling added: the counters that changed, as differences. Constants (sizes,
    index arrays) do not change, so only what a sampler accumulates is shipped back; an
    attribute first set while sampling (a cache) is not a counter the driver's sampler has."""
    return {
        k: after[k] - before[k]
        for k in after
        if k in before and not np.array_equal(after[k], before[k])
    }


def add_counters(sampler: Sampler, delta: Counters) -> None:
    """Add the shards' counts into ``sampler`` (built in the driver, never sampled)."""
    for path, d in delta.items():
        *parents, name = path.split(".")
        obj = sampler
        for p in parents:
            obj = getattr(obj, p)
        value = getattr(obj, name)
        if isinstance(value, np.ndarray):
            value += d
        else:
            setattr(obj, name, type(value)(value + d.item()))


def _pool_shard(
    scfg: Any, seed: int, inputs: tuple, user_range: tuple[int, int]
) -> tuple[list[np.ndarray], Counters]:
    """One task: the negatives of ``user_range`` (per epoch) and what its sampler counted.
    inputs: (train, exclude, deps), one object-store entry shared by every task. The
    data-side samplers are numpy: the task never imports torch (a worker starts faster)."""
    train, exclude, deps = inputs
    sampler = build_sampler(scfg, train, **deps)
    before = counters(sampler)
    width, epochs = scfg.pool_width, scfg.pool_epochs
    negs = pool_negatives(sampler, train, exclude, user_range, width, epochs, seed)
    return negs, grown(before, counters(sampler))


def training_pool(
    cfg: RayCfg,
    scfg: Any,
    seed: int,
    sampler: Sampler,
    train: Interactions,
    exclude: Interactions,
    deps: dict[str, Any],
) -> tuple[pl.DataFrame, int]:
    """(the pool, shards): :func:`negsamp.samplers.pool.training_pool` of sampler config
    ``scfg`` (its ``pool_width`` x ``pool_epochs``) over every user, in ``ray.shards`` Ray
    tasks. ``sampler``: the driver's own, built from ``scfg``, ``train`` and ``deps`` and
    never sampled: it receives the shards' counts."""
    ray = runtime.ensure(cfg)
    ranges = [r for r in shard_ranges(train.n_users, runtime.n_shards(cfg)) if r[1] > r[0]]
    # once: the tasks read it in place (numpy arrays are zero-copy from the object store);
    # an exclude set that is the training CSR itself is stored once
    inputs = ray.put((train, exclude, deps))
    task = ray.remote(num_cpus=cfg.cpus_per_task)(_pool_shard)
    shards = ray.get([task.remote(scfg, seed, inputs, r) for r in ranges])
    for _, delta in shards:
        add_counters(sampler, delta)
    width = scfg.pool_width
    negs = [
        np.concatenate([s[0][e] for s in shards]) if shards else np.zeros((0, width), np.int32)
        for e in range(scfg.pool_epochs)
    ]
    log.info("ray: sampled %d user ranges as tasks", len(ranges))
    return pool_frame(train, negs, width), len(ranges)


def candidates(
    cfg: RayCfg, known: Interactions, test: pl.DataFrame, n_eval_neg: int, seed: int
) -> tuple[pl.DataFrame, int]:
    """(candidates, shards): :func:`negsamp.samplers.pool.eval_candidates` with the test
    rows split by user range into Ray tasks, gathered back in the order of ``test`` (a
    user's rows get the same candidates whatever else is in a shard)."""
    ray = runtime.ensure(cfg)
    ranges = [r for r in shard_ranges(known.n_users, runtime.n_shards(cfg)) if r[1] > r[0]]
    shard_of = np.searchsorted([hi for _, hi in ranges], test["user"].to_numpy(), side="right")
    rows = [np.flatnonzero(shard_of == k) for k in range(len(ranges))]
    known_ref = ray.put(known)
    task = ray.remote(num_cpus=cfg.cpus_per_task)(eval_candidates)
    parts = ray.get([task.remote(known_ref, test[r], n_eval_neg, seed) for r in rows])
    negs = np.empty((test.height, n_eval_neg), np.int32)
    for r, part in zip(rows, parts, strict=True):
        negs[r] = part["candidates"].to_numpy()
    log.info("ray: drew evaluation candidates in %d user ranges as tasks", len(ranges))
    return candidates_frame(test, negs), len(ranges)
