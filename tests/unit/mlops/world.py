"""A tiny project after ``evaluate``, real enough for the register stage and the gate.

24 users, 30 items, leave-one-out split, 5 sampled candidates per test row, a BPR model
with seeded weights and its evaluation by the real evaluate stage. :func:`set_challenger`
rewrites the challenger's numbers so a test decides whether it beats the champion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from negsamp.config import BPRCfg, Config, EvaluateCfg, RegistryCfg, SweepCfg
from negsamp.interactions import Interactions
from negsamp.io import read_json, write_json, write_parquet
from negsamp.models import build_model, save_model
from negsamp.paths import Paths
from negsamp.samplers.pool import eval_candidates
from negsamp.stages import evaluate

N_USERS, N_ITEMS, PER_USER = 24, 30, 6
RAW_USERS = [1000 + 7 * u for u in range(N_USERS)]  # original ids: not the dense codes
RAW_ITEMS = [f"i{j:02d}" for j in range(N_ITEMS)]


def config(sweep: SweepCfg | None = None, **registry: object) -> Config:
    """Small evaluation (K 5 and 10, 5 candidates, few resamples); ``registry`` overrides."""
    reg = {"model_name": "negsamp", "n_resamples": 200} | registry
    return Config(
        model=BPRCfg(factors=4),
        evaluate=EvaluateCfg(ks=(5, 10), n_eval_neg=5, bootstrap=10),
        registry=RegistryCfg(**reg),
        sweep=sweep or SweepCfg(),
    )


def build(root: Path, cfg: Config, seed: int = 0) -> Paths:
    """Write the data, splits, candidates, a model (``seed``) and its evaluation under root."""
    paths = Paths(root=root)
    rng = np.random.default_rng(1234)
    pop = 1.0 / np.arange(1, N_ITEMS + 1)
    rows = [
        (u, int(i), t)
        for u in range(N_USERS)
        for t, i in enumerate(rng.choice(N_ITEMS, PER_USER, replace=False, p=pop / pop.sum()))
    ]
    u, i, t = map(np.array, zip(*rows, strict=True))
    df = pl.DataFrame(
        {"user": u, "item": i, "count": np.ones_like(u), "timestamp": t},
        schema_overrides={"user": pl.Int32, "item": pl.Int32, "count": pl.Int32},
    )
    write_parquet(paths.interactions, df)
    write_parquet(paths.user_ids, pl.DataFrame({"user": range(N_USERS), "original": RAW_USERS}))
    write_parquet(paths.item_ids, pl.DataFrame({"item": range(N_ITEMS), "original": RAW_ITEMS}))
    last = pl.col("timestamp") == PER_USER - 1
    write_parquet(paths.test, df.filter(last))
    write_parquet(paths.valid, df.filter(pl.col("timestamp") == PER_USER - 2))
    write_parquet(paths.train, df.filter(pl.col("timestamp") < PER_USER - 2))
    known = Interactions.from_frame(df, N_USERS, N_ITEMS)
    test = df.filter(last).select("user", "item")
    write_parquet(paths.eval_candidates, eval_candidates(known, test, 5, cfg.base.seed))
    write_json(paths.eval_candidates_manifest, {"n_eval_neg": 5})
    write_json(paths.split_report, {"method": "leave_one_out"})
    write_parquet(paths.train_pool, pl.DataFrame({"user": [0], "neg": [5]}))
    write_json(paths.train_pool_manifest, {"sampler": "uniform", "rows": 1})
    train_model(paths, cfg, seed)
    return paths


def train_model(
    paths: Paths, cfg: Config, seed: int, valid: float | None = None
) -> dict[str, float]:
    """Save configuration ``paths.variant``'s model with seeded weights and evaluate it (the
    evaluate stage); returns its metrics. ``valid``: its validation ``train.monitor`` value at
    the kept (last) epoch, what a sweep chooses on (default: a value from the seed)."""
    model = build_model(BPRCfg(factors=4), N_USERS, N_ITEMS, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.item.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 1))
        model.user.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 2))
    save_model(model, paths.model_dir)
    kept = 0.1 + 0.01 * seed if valid is None else valid
    monitor = f"valid_{cfg.train.monitor}"
    history = [
        {"epoch": e, "loss": 0.7 - 0.1 * e, "seconds": 0.1, "pairs_per_second": 1e5}
        | {monitor: kept - 0.05 * (2 - e)}
        for e in (1, 2)
    ]
    write_json(paths.train_history, history)
    return evaluate.run(cfg, paths, paths.variant)


def set_challenger(paths: Paths, metric: str, per_user: pl.DataFrame | None, value: float) -> None:
    """Make the challenger's ``metric`` ``value`` (metrics.json) and, for a per-user metric,
    ``per_user`` (a frame of ``user`` and ``metric``) in per_user.parquet."""
    metrics = read_json(paths.metrics) | {metric: value}
    write_json(paths.metrics, metrics)
    if per_user is not None:
        frame = pl.read_parquet(paths.per_user).drop(metric)
        write_parquet(paths.per_user, frame.join(per_user.select("user", metric), on="user"))


def per_user(paths: Paths, metric: str) -> pl.DataFrame:
    return pl.read_parquet(paths.per_user, columns=["user", metric])
