"""Sequences of a user's items and the negatives drawn per position (pure, numpy/torch).

A user's training positives in time order (ties by item id, the split's rule) form their
sequence. Every item but the first is a target, predicted from the items before it; the
targets are cut into windows of ``max_len`` from the latest backwards (so no training item
is dropped), each window a row of ``inputs`` / ``targets`` int64 [W, max_len],
right-aligned, padded with ``n_items``.

Negatives are drawn per target position, on the training device, ``n_neg`` per position
from ``uniform`` or ``popularity`` (count^alpha) over the items not in the user's excluded
set (``sampler.exclude``: the whole training sequence, or also the validation item; ``none``
allows them), with the exact samplers the pools use (:mod:`negsamp.samplers.torch_exact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from negsamp.interactions import Interactions
from negsamp.rng import Stream, torch_generator
from negsamp.samplers.torch_exact import (
    TorchPositives,
    uniform_excluding_torch,
    weighted_excluding_torch,
)

_ORDER = ["user", "timestamp", "item"]


def _ordered(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, back) int64 [n] in time order; back = 0 for a user's latest item."""
    cols = ["user", "item"] + (["timestamp"] if "timestamp" in frame.columns else [])
    df = frame.select(cols).sort([c for c in _ORDER if c in cols])
    df = df.with_columns(back=pl.len().over("user") - 1 - pl.int_range(pl.len()).over("user"))
    return (
        df["user"].to_numpy().astype(np.int64),
        df["item"].to_numpy().astype(np.int64),
        df["back"].to_numpy().astype(np.int64),
    )


@dataclass(frozen=True)
class Windows:
    """Training rows: users int64 [W]; inputs, targets int64 [W, L] (``pad`` = no item)."""

    users: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor


def windows(frame: pl.DataFrame, max_len: int, n_items: int) -> Windows:
    """The training windows of ``frame`` (user, item, timestamp): see the module doc."""
    users, items, back = _ordered(frame)
    prev = np.r_[n_items, items[:-1]]
    is_target = np.r_[False, users[1:] == users[:-1]]
    u, it, pv, k = users[is_target], items[is_target], prev[is_target], back[is_target]
    keys, row = np.unique(u * (len(items) + 1) + k // max_len, return_inverse=True)
    col = max_len - 1 - k % max_len
    inputs = np.full((keys.size, max_len), n_items, np.int64)
    targets = inputs.copy()
    inputs[row, col], targets[row, col] = pv, it
    return Windows(
        torch.as_tensor(keys // (len(items) + 1)), torch.as_tensor(inputs), torch.as_tensor(targets)
    )


def histories(frame: pl.DataFrame, n_users: int, max_len: int, n_items: int) -> torch.Tensor:
    """int64 [n_users, max_len]: each user's latest ``max_len`` items of ``frame``,
    right-aligned (the latest in the last column), padded with ``n_items``."""
    users, items, back = _ordered(frame)
    out = np.full((n_users, max_len), n_items, np.int64)
    keep = back < max_len
    out[users[keep], max_len - 1 - back[keep]] = items[keep]
    return torch.as_tensor(out)


def followed_by(frame: pl.DataFrame, later: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` (user, item, timestamp) followed by ``later``'s rows (user, item), which
    count as each user's latest (the validation item, after every training item)."""
    base = frame.select("user", "item", "timestamp")
    if later is None or later.height == 0:
        return base
    last = int(base["timestamp"].max() or 0) + 1 if base.height else 0
    extra = later.select("user", "item").with_columns(timestamp=pl.lit(last, pl.Int64))
    return pl.concat([base.with_columns(pl.col("timestamp").cast(pl.Int64)), extra])


class Negatives:
    """Per-position negatives of ``sampler`` (uniform | popularity), never one of the user's
    excluded items; ``log_q`` float32 [n_items] the sampler's log-probability (logQ)."""

    def __init__(self, sampler: Any, exclude: Interactions, counts: np.ndarray, device: Any):
        self.n_neg, self.name = int(sampler.n_neg), sampler.name
        self.positives = TorchPositives(exclude, device)
        n = exclude.n_items
        if self.name == "popularity":
            self.weights = torch.as_tensor(counts, dtype=torch.float64, device=device).pow(
                sampler.alpha
            )
        else:
            self.weights = torch.ones(n, dtype=torch.float64, device=device)
        self.log_q = (self.weights / self.weights.sum()).clamp_min(1e-30).log().float()

    def __call__(self, users: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """users int64 [P] (one per target position) -> int64 [P, n_neg]."""
        if self.name == "uniform":
            return uniform_excluding_torch(self.positives, users, self.n_neg, gen)
        return weighted_excluding_torch(self.positives, users, self.n_neg, self.weights, gen)


def draw_statistics(
    sampler: Any,
    train: Interactions,
    exclude: Interactions,
    frame: pl.DataFrame,
    seed: int,
    max_len: int,
    cap: int = 2_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """(users int64 [P], negatives int64 [P, n_neg]): one epoch's positions (at most ``cap``
    negatives' worth, the first positions in window order) drawn as the trainer draws them,
    from the ``NEGATIVES`` stream: what the manifest's statistics and audit describe."""
    w = windows(frame, max_len, train.n_items)
    mask = w.targets != train.n_items
    users = w.users[:, None].expand_as(w.targets)[mask]
    users = users[: max(1, cap // int(sampler.n_neg))]
    draw = Negatives(sampler, exclude, train.item_counts(), "cpu")
    negs = draw(users, torch_generator(seed, Stream.NEGATIVES))
    return users.numpy(), negs.numpy()
