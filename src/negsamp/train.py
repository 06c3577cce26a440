"""The trainer shared by all gradient models: mini-batches over a negative pool.

Epoch ``e`` reads slice ``e % pool_epochs`` of the pool, shuffled by a generator
derived from the seed, so the same params give the same model (on CPU).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"base.device={spec!r} but CUDA is not available; use auto or cpu")
    return torch.device(spec)


def seed_generator(seed: int, purpose: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0]))
    return g


@dataclass(frozen=True)
class Pool:
    """A training pool in memory: per epoch slice, users/pos int64 [n], negs int64 [n, n_neg]."""

    users: torch.Tensor
    pos: torch.Tensor
    negs: torch.Tensor  # [pool_epochs, n, n_neg]

    @classmethod
    def from_frame(cls, df: pl.DataFrame, device: torch.device) -> Pool:
        epochs = int(df["epoch"].max()) + 1
        df = df.sort(["epoch", "user", "pos_item"])
        n = df.height // epochs
        first = df.slice(0, n)
        negs = df["neg_items"].to_numpy().reshape(epochs, n, -1)
        return cls(
            torch.as_tensor(first["user"].to_numpy().astype(np.int64), device=device),
            torch.as_tensor(first["pos_item"].to_numpy().astype(np.int64), device=device),
            torch.as_tensor(negs.astype(np.int64), device=device),
        )

    @property
    def pool_epochs(self) -> int:
        return int(self.negs.shape[0])


def fit(
    model: Any, pool: Pool, cfg: Any, seed: int, device: torch.device
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``cfg.epochs``; returns per-epoch history (loss, seconds)."""
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr)
    gen = seed_generator(seed, purpose=3)
    n = pool.users.shape[0]
    history = []
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        negs = pool.negs[epoch % pool.pool_epochs]
        total = torch.zeros((), device=device)
        for lo in range(0, n, cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            loss = model.loss(pool.users[idx], pool.pos[idx], negs[idx], cfg.l2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        mean_loss = float(total) / n
        seconds = time.perf_counter() - t0
        history.append(
            {
                "epoch": epoch,
                "loss": mean_loss,
                "seconds": seconds,
                "pairs_per_second": n * negs.shape[1] / seconds,
            }
        )
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        log.info("epoch %d loss %.5f (%.1fs)", epoch, mean_loss, seconds)
    model.eval()
    return history
