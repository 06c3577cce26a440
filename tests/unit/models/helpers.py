"""Tiny hand-built data and a quick fit for the model tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from negsamp import train as trainer
from negsamp.config import TrainCfg
from negsamp.interactions import Interactions
from negsamp.models import build_model, model_config

# small, quick configurations of every model (the tuned defaults are for real data)
SMALL: dict[str, dict[str, Any]] = {
    "bpr": {"factors": 4, "lr": 0.05, "l2": 1e-4, "init_std": 0.1},
    "lmf": {"factors": 4, "lr": 0.05, "l2": 1e-4, "init_std": 0.1},
    "gmf": {"factors": 4, "lr": 0.02, "l2": 1e-4, "init_std": 0.1},
    "mlp": {"factors": 4, "layers": [16, 8], "lr": 0.02, "l2": 1e-5, "init_std": 0.1},
    "neumf": {
        "factors": 4,
        "mlp_factors": 4,
        "layers": [16, 8],
        "lr": 0.02,
        "l2": 1e-5,
        "init_std": 0.1,
    },
    "ials": {"factors": 4, "alpha": 5.0, "reg": 1.0, "iterations": 6, "recency_boost": 0.0},
    "gru4rec": {"hidden": 16, "max_len": 10, "dropout": 0.0, "lr": 0.03, "batch_size": 8},
    "sasrec": {
        "hidden": 16,
        "num_blocks": 1,
        "max_len": 10,
        "dropout": 0.0,
        "lr": 0.005,
        "batch_size": 8,
        "init_std": 0.1,
    },
}
EPOCHS = {"mlp": 40, "neumf": 40}


def checkerboard(
    n_users: int = 24, n_items: int = 20, seed: int = 0
) -> tuple[Interactions, np.ndarray]:
    """Two user groups x two item groups: users in the first half like every item of the first
    half, the others the second half; each user's held-out item (returned, int64 [n_users])
    is one in-group item, left out of training."""
    rng = np.random.default_rng(seed)
    half_u, half_i = n_users // 2, n_items // 2
    users, items, held = [], [], np.empty(n_users, np.int64)
    for u in range(n_users):  # test data: a loop over 24 users is fine
        group = np.arange(half_i) if u < half_u else np.arange(half_i, n_items)
        held[u] = rng.choice(group)
        keep = group[group != held[u]]
        users += [u] * keep.size
        items += keep.tolist()
    return Interactions.from_arrays(np.array(users), np.array(items), n_users, n_items), held


def uniform_pool(train: Interactions, n_neg: int, epochs: int, seed: int = 0) -> trainer.Pool:
    """Every positive with ``n_neg`` uniform non-positives per epoch (rejection, test-sized)."""
    rng = np.random.default_rng(seed)
    users, pos = train.rows().astype(np.int64), train.indices.astype(np.int64)
    negs = rng.integers(0, train.n_items, (epochs, users.size, n_neg))
    bad = train.contains(users[None, :, None], negs)
    while bad.any():
        negs[bad] = rng.integers(0, train.n_items, int(bad.sum()))
        bad = train.contains(users[None, :, None], negs)
    return trainer.Pool(torch.as_tensor(users), torch.as_tensor(pos), torch.as_tensor(negs))


def make(name: str, train: Interactions, seed: int = 0, **kw: Any) -> Any:
    cfg = model_config({"name": name, **SMALL[name], **kw})
    return build_model(cfg, train.n_users, train.n_items, torch.Generator().manual_seed(seed))


def fit(name: str, train: Interactions, seed: int = 0, **kw: Any) -> Any:
    """A model of kind ``name`` trained on ``train`` on CPU (a few seconds at most)."""
    model = make(name, train, seed, **kw)
    cpu = torch.device("cpu")
    cfg = TrainCfg(epochs=EPOCHS.get(name, 25), batch_size=64, patience=0, checkpoint=False)
    if getattr(model, "sequential", False):
        fit_sequence(model, train, cfg, seed)
    elif model.trains_on_pool:
        trainer.fit(model, uniform_pool(train, 4, 5, seed), cfg, seed, cpu)
    else:
        trainer.fit_closed_form(model, train, cfg, cpu)
    return model


def sequence_frame(train: Interactions) -> pl.DataFrame:
    """user, item, timestamp of ``train``'s positives, each user's in item order (time = item)."""
    return pl.DataFrame(
        {"user": train.rows(), "item": train.indices, "timestamp": train.indices.astype(np.int64)}
    )


def fit_sequence(model: Any, train: Interactions, cfg: Any, seed: int, n_neg: int = 4) -> None:
    """Fit a sequential model on ``train``'s sequences (uniform negatives), keep them as history."""
    from negsamp import sequential
    from negsamp.config import UniformSamplerCfg

    frame = sequence_frame(train)
    rows = sequential.windows(frame, model.cfg.max_len, train.n_items)
    model.set_history(sequential.histories(frame, train.n_users, model.cfg.max_len, train.n_items))
    sampler = UniformSamplerCfg(n_neg=n_neg)
    cpu = torch.device("cpu")
    sequential.fit(
        model, rows, cfg, seed, cpu, sampler=sampler, exclude=train, item_counts=train.item_counts()
    )
