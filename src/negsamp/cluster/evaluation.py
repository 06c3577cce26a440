"""Sharded full-ranking evaluation and batch recommendations on Ray.

The model (its ``score_all``, weights and item embeddings included) and the masked
positives go to the object store once (``ray.put``); each Ray task scores one range of
users with the same function the local run uses (:func:`negsamp.evaluate.full_ranking`,
:func:`negsamp.recommend.top_k`) at ``ray.cpus_per_task`` torch threads, and the driver
gathers the per-user results back in the original order.

Ranges are cut on multiples of the scoring batch (``evaluate.batch_size``,
``recommend.batch_size``) in the local run's user order, so every task scores exactly the
batches the local run scores: the same tensors, hence the same ranks, lists and metrics,
whatever the number of shards. A CUDA device stays in this process (the tasks reserve
CPUs only).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl
import torch

from negsamp import evaluate as ev
from negsamp import recommend as rec
from negsamp.cluster import runtime
from negsamp.config.run import RayCfg
from negsamp.interactions import Interactions

log = logging.getLogger(__name__)


def batch_ranges(n: int, n_shards: int, batch: int) -> list[tuple[int, int]]:
    """Non-empty [lo, hi) ranges of ``range(n)`` cut on multiples of ``batch``, at most
    ``n_shards`` of them, as even in batches as the count allows."""
    batches = -(-n // batch)
    cuts = sorted({min(n, (batches * k // n_shards) * batch) for k in range(n_shards + 1)})
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _stays_here(device: Any) -> bool:
    """Whether the work stays in this process: the tasks reserve CPUs, not GPUs."""
    if torch.device(device).type == "cpu":
        return False
    log.info("ray: scoring stays in this process on %s (Ray tasks here reserve CPUs)", device)
    return True


def _threads(cpus: float) -> None:
    torch.set_num_threads(max(1, int(cpus)))


def _rank(
    score_all: ev.AllScorer,
    mask: Interactions,
    test: pl.DataFrame,
    kmax: int,
    batch: int,
    cpus: float,
) -> ev.FullRanking:
    _threads(cpus)
    return ev.full_ranking(score_all, mask, test, kmax, "cpu", batch)


def full_ranking(
    cfg: RayCfg,
    score_all: ev.AllScorer,
    mask: Interactions,
    test: pl.DataFrame,
    kmax: int,
    device: Any,
    batch: int,
) -> ev.FullRanking:
    """:func:`negsamp.evaluate.full_ranking` of ``test``'s users in ``ray.shards`` Ray tasks."""
    row_user, row_item = ev.held_out(mask, test)  # the same error, raised here
    users = np.unique(row_user)
    if _stays_here(device) or users.size == 0:
        return ev.full_ranking(score_all, mask, test, kmax, device, batch)
    ray = runtime.ensure(cfg)
    ranges = batch_ranges(users.size, runtime.n_shards(cfg), batch)
    shard = np.searchsorted(users[[lo for lo, _ in ranges[1:]]], row_user, side="right")
    rows = [np.flatnonzero(shard == k) for k in range(len(ranges))]
    score_ref, mask_ref = ray.put(score_all), ray.put(mask)
    task = ray.remote(num_cpus=cfg.cpus_per_task)(_rank)
    parts = ray.get(
        [task.remote(score_ref, mask_ref, test[r], kmax, batch, cfg.cpus_per_task) for r in rows]
    )
    below = np.empty(row_user.size, np.int64)
    position = np.empty(row_user.size, np.int64)
    for r, part in zip(rows, parts, strict=True):
        below[r], position[r] = part.below, part.position
    log.info("ray: ranked %d users in %d tasks", users.size, len(ranges))
    return ev.FullRanking(
        users=np.concatenate([p.users for p in parts]),
        n_candidates=np.concatenate([p.n_candidates for p in parts]),
        top=np.concatenate([p.top for p in parts]),
        row_user=row_user,
        row_item=row_item,
        below=below,
        position=position,
    )


def _top(
    score_all: ev.AllScorer,
    seen: Interactions,
    users: np.ndarray,
    k: int,
    batch: int,
    cpus: float,
) -> rec.TopK:
    _threads(cpus)
    return rec.top_k(score_all, seen, users, k, "cpu", batch, progress=False)


def top_k(
    cfg: RayCfg,
    score_all: ev.AllScorer,
    seen: Interactions,
    users: np.ndarray,
    k: int,
    device: Any,
    batch: int,
) -> tuple[rec.TopK, int | None]:
    """(:func:`negsamp.recommend.top_k` of ``users`` in ``ray.shards`` Ray tasks, how many;
    None where it ran in this process)."""
    users = np.asarray(users, np.int64)
    if _stays_here(device) or users.size == 0:
        return rec.top_k(score_all, seen, users, k, device, batch), None
    ray = runtime.ensure(cfg)
    ranges = batch_ranges(users.size, runtime.n_shards(cfg), batch)
    score_ref, seen_ref = ray.put(score_all), ray.put(seen)
    task = ray.remote(num_cpus=cfg.cpus_per_task)(_top)
    parts = ray.get(
        [
            task.remote(score_ref, seen_ref, users[lo:hi], k, batch, cfg.cpus_per_task)
            for lo, hi in ranges
        ]
    )
    log.info("ray: recommended for %d users in %d tasks", users.size, len(ranges))
    top = rec.TopK(
        users=users,
        items=np.concatenate([p.items for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
    )
    return top, len(ranges)
