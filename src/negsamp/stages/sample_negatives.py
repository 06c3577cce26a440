"""Stage ``sample-negatives``: the training pool of one sampler configuration, plus its manifest.

Data-side samplers write ``pool_width`` negatives per training positive for each of
``pool_epochs`` epochs (for ``hard`` / ``mixed`` these are the base sampler's candidates
the trainer re-ranks with the model each batch). ``in_batch`` takes its negatives from
the batch: its pool is empty and its manifest says so. Every pool is audited before it
is written: a negative that is one of its user's excluded positives fails the stage.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import polars as pl

from negsamp import engine, faults
from negsamp.config import Config
from negsamp.config.models import SEQUENTIAL
from negsamp.io import md5_file, write_json, write_parquet
from negsamp.paths import Paths
from negsamp.samplers import build_sampler
from negsamp.samplers.exact import ALGORITHM, SamplingError, check_capacity
from negsamp.samplers.pool import (
    audit_pool,
    plot_negative_popularity,
    pool_statistics,
    training_pool,
)
from negsamp.stages.common import catalog_size, excluded_positives, original_users, positives
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src

SPEC = StageSpec(
    name="sample-negatives",
    # base.device, registry.model_name: teacher_hard scores with the registered champion
    # model.name: a sequential model (sasrec) draws per position while it trains: no pool;
    # its loss and max_len decide what the manifest's statistics draw describes
    params=(
        "base.seed",
        "base.device",
        "registry.model_name",
        "model.name",
        "model.sasrec.loss",
        "model.sasrec.max_len",
        "model.gru4rec.loss",
        "model.gru4rec.max_len",
        "sampler",
        "sweep.configs.${key}",
    ),
    # valid: sampler.exclude=train+valid keeps validation items out of the negatives
    # interactions, item_attributes, item_release: exclude_unreleased and the attribute samplers
    deps=rel(
        SHARED.train,
        SHARED.valid,
        SHARED.user_ids,
        SHARED.item_ids,
        SHARED.interactions,
        SHARED.item_attributes,
        SHARED.item_release,
    ),
    # models, train.py, evaluate.py, champion.py, registry.py: teacher_hard's teacher
    code=src(
        "samplers",
        "models",
        "sequences.py",
        "interactions.py",
        "evaluate.py",
        "champion.py",
        "mlops",
        "device.py",
        "rng.py",
        "stages/sample_negatives.py",
    ),
    outs=rel(
        VARIANT.train_pool,
        VARIANT.train_pool_manifest,
        VARIANT.train_pool_manifest.with_name("negative_popularity.png"),
    ),
    per_variant=True,
)

log = logging.getLogger(__name__)


def _teacher_score_all(cfg: Config, paths: Paths) -> Any:
    """score_all of the teacher (the registered champion, or a saved model folder), in current ids."""
    from negsamp.device import resolve_device
    from negsamp.models import load_model
    from negsamp.stages.common import champion_scorer

    device = resolve_device(cfg.base.device)
    teacher = cfg.sampler.active.teacher
    if teacher == "champion":
        champion = champion_scorer(cfg, paths, device)
        if champion is None:
            raise ValueError(
                "sampler teacher_hard: no champion is registered yet; train one first "
                "(e.g. with a uniform sampler) or set sampler.teacher to a saved model folder"
            )
        scorer = champion[1]
    else:
        scorer = load_model(
            paths.root / teacher if not str(teacher).startswith("/") else teacher, str(device)
        )

    def score_all(users: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            s = scorer.score_all(torch.as_tensor(users, dtype=torch.int64, device=device))
        return s.float().cpu().numpy()

    return score_all


def item_times(s: Any, paths: Paths, n_items: int, positives: Any = None) -> Any:
    """ItemTimes for ``exclude_unreleased``: the time of each positive of ``positives`` (a
    parquet file: the training split by default; the refit passes the whole log), and each
    item's first-seen time (its first interaction in the log, or its release date where
    ``first_seen: release`` and the item features give one)."""
    from negsamp.samplers.timeaware import NEVER, ItemTimes

    log_df = pl.read_parquet(paths.interactions, columns=["item", "timestamp"])
    first = log_df.group_by("item").agg(pl.col("timestamp").min())
    seen = np.full(n_items, NEVER, np.int64)
    seen[first["item"].to_numpy()] = first["timestamp"].to_numpy()
    if s.first_seen == "release":
        dates = pl.read_parquet(paths.item_release).drop_nulls("release")
        if dates.height == 0:
            raise SamplingError(
                "sampler.first_seen=release but no item has a release date: set "
                "data.item_features (e.g. source: movielens-100k) and run ingest, or use "
                "sampler.first_seen=log"
            )
        seen[dates["item"].to_numpy()] = dates["release"].to_numpy()
    train = pl.read_parquet(positives or paths.train, columns=["user", "item", "timestamp"])
    return ItemTimes.build(
        train["user"].to_numpy(),
        train["item"].to_numpy(),
        train["timestamp"].to_numpy(),
        seen,
        s.first_seen,
    )


def sampler_deps(
    s: Any, cfg: Config, paths: Paths, n_items: int, positives: Any = None
) -> dict[str, Any]:
    """What the sampler needs beyond the positives: the teacher, item features, item times
    (of the positives in ``positives``, a parquet file: the training split by default)."""
    deps: dict[str, Any] = {}
    if s.name == "teacher_hard":
        deps["score_all"] = _teacher_score_all(cfg, paths)
    if s.name == "same_attribute" or getattr(s, "by", None) == "attribute":
        deps["attributes"] = pl.read_parquet(paths.item_attributes)
    if getattr(s, "exclude_unreleased", False):
        deps["times"] = item_times(s, paths, n_items, positives)
    return deps


def check_fits(s: Any, train: Any, exclude: Any, paths: Paths) -> None:
    """Refuse, before any sampling or training, a pool the data cannot fill.

    ``sampler.n_neg`` (or a batch-side sampler's ``candidates``) above the catalog, and,
    without replacement, a user with fewer items left than the pool's width; the
    message names the setting, the file's user id and the largest value that fits.
    """
    n_items = train.n_items
    if s.name in ("hard", "mixed") and s.candidates > n_items:
        raise SamplingError(
            f"sampler.{s.name}.candidates={s.candidates} is more than the catalog's {n_items} "
            f"items; set sampler.{s.name}.candidates to at most {n_items}"
        )
    if s.name != "hard" and s.n_neg > n_items:
        raise SamplingError(
            f"sampler.n_neg={s.n_neg} is more than the catalog's {n_items} items; set "
            f"sampler.n_neg to at most {n_items}"
        )
    setting = {  # the key(s) whose value is the pool's width
        "hard": "sampler.hard.candidates",
        "mixed": "the pool width (sampler.mixed.candidates + the random share of sampler.n_neg)",
    }.get(s.name, "sampler.n_neg")
    users = np.flatnonzero(train.user_degrees() > 0)
    check_capacity(
        exclude,
        users,
        s.pool_width,
        replace=s.replace,
        what=f"{s.name} sampler",
        setting=setting,
        original=original_users(paths),
        fix="set sampler.replace=true",
    )


def _empty_pool() -> pl.DataFrame:
    schema = {
        "user": pl.Int32,
        "pos_item": pl.Int32,
        "epoch": pl.Int16,
        "neg_items": pl.Array(pl.Int32, 1),
    }
    return pl.DataFrame(schema=schema)


def _on_the_fly(cfg: Config, paths: Paths, train: Any, common: dict[str, Any]) -> dict[str, Any]:
    """A sequential model's manifest: no pool (positions x n_neg would not be stored at
    realistic sizes; the trainer draws per position from the ``NEGATIVES`` stream of the
    seed), but the sampler's configuration, the seed and the statistics of an epoch-sized
    draw by the trainer's own sampler, audited against the excluded positives."""
    from negsamp import sequences

    s = cfg.sampler.active
    write_parquet(paths.train_pool, _empty_pool())
    manifest = {
        **common,
        "pool_epochs": 0,
        "kind": "train_pool",
        "side": "on_the_fly",
        "model": cfg.model.name,
        "rows": 0,
        "negatives": 0,
        "content_md5": md5_file(paths.train_pool),
        "note": f"{cfg.model.name} draws n_neg negatives per sequence position while it trains "
        "(negsamp.sequential, NEGATIVES stream of the seed): no pool is stored",
    }
    seq = getattr(cfg.model, cfg.model.name)  # its block: loss, max_len
    loss = seq.loss
    if loss == "full_softmax" or s.name == "in_batch":
        manifest["n_neg"] = 0
        manifest["note"] += (
            "; full_softmax: every item is a negative"
            if loss == "full_softmax"
            else "; in_batch: the batch's target items are the negatives"
        )
        write_json(paths.train_pool_manifest, manifest)
        plot_negative_popularity(
            pool_statistics(np.zeros((0, 1), np.int64), train),
            paths.train_pool_manifest.with_name("negative_popularity.png"),
        )
        return manifest
    exclude = excluded_positives(cfg, paths, train)
    check_fits(s, train, exclude, paths)
    frame = pl.read_parquet(paths.train)
    t0 = time.perf_counter()
    users, negs = sequences.draw_statistics(s, train, exclude, frame, cfg.base.seed, seq.max_len)
    seconds = time.perf_counter() - t0
    if exclude.contains(np.broadcast_to(users[:, None], negs.shape), negs).any():
        raise SamplingError(f"{s.name} drew an excluded positive as a negative (a sampler bug)")
    weights = train.item_counts().astype(np.float64) ** (s.alpha if s.name == "popularity" else 0)
    stats = pool_statistics(negs, train, target=weights / weights.sum())
    manifest |= {
        "n_neg": s.n_neg,
        "exclude": s.exclude,
        "statistics_draw": {"positions": int(users.size), "negatives": int(negs.size)},
        "statistics": stats,
        "timing": {"seconds": seconds, "negatives_per_second": negs.size / max(seconds, 1e-9)},
    }
    write_json(paths.train_pool_manifest, manifest)
    plot_negative_popularity(stats, paths.train_pool_manifest.with_name("negative_popularity.png"))
    return manifest


def _draw(
    s: Any, sampler: Any, train: Any, exclude: Any, deps: dict[str, Any], seed: int
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """(the pool, where it was drawn): in this process, or in user-range shards as Ray tasks
    with ``base.engine: ray`` (the same bytes; ``sampler`` gets the shards' counts)."""
    eng = engine.current()
    if eng.is_ray and s.name != "teacher_hard":
        from negsamp.cluster import sampling

        pool, shards = sampling.training_pool(eng.ray, s, seed, sampler, train, exclude, deps)
        return pool, engine.lineage(shards)
    if eng.is_ray:
        log.info(
            "teacher_hard samples in this process (base.engine=ray): its teacher model "
            "scores here, not in Ray tasks"
        )
    pool = training_pool(sampler, train, s.pool_width, s.pool_epochs, seed, exclude=exclude)
    return pool, engine.lineage()


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths(), variant: str = "default") -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    s = cfg.sampler.active
    train = positives(paths, paths.train)
    common = {
        "sampler": s.model_dump(mode="json"),
        "seed": cfg.base.seed,
        "positives": train.nnz,
        "users": int((train.user_degrees() > 0).sum()),
        "pool_epochs": getattr(s, "pool_epochs", 0),  # in_batch keeps no pool
        "data_md5": {"train": md5_file(paths.train)},
    }
    if cfg.model.name in SEQUENTIAL:
        return _on_the_fly(cfg, paths, train, common)
    if s.name == "in_batch":
        write_parquet(paths.train_pool, _empty_pool())
        manifest = {
            **common,
            "kind": "train_pool",
            "side": "batch",
            "rows": 0,
            "negatives": 0,
            "n_neg": 0,
            "note": "in_batch draws its negatives from each mini-batch: no pool",
        }
        manifest["content_md5"] = md5_file(paths.train_pool)
        # in-batch negatives are the batch's other positives: their distribution is the
        # positives' popularity, which is what the statistics and the plot show
        counts = train.item_counts().astype(float)
        stats = pool_statistics(train.indices[:, None], train, target=counts / counts.sum())
        manifest["statistics"] = stats
        write_json(paths.train_pool_manifest, manifest)
        plot_negative_popularity(
            stats, paths.train_pool_manifest.with_name("negative_popularity.png")
        )
        log.info("in_batch: negatives come from the batch, no pool written")
        return manifest

    exclude = excluded_positives(cfg, paths, train)
    check_fits(s, train, exclude, paths)
    deps = sampler_deps(s, cfg, paths, train.n_items)
    sampler = build_sampler(s, train, **deps)
    width = s.pool_width
    t0 = time.perf_counter()
    pool, where = _draw(s, sampler, train, exclude, deps, cfg.base.seed)
    seconds = time.perf_counter() - t0
    audit_pool(pool, exclude)
    write_parquet(paths.train_pool, pool)
    faults.point("sample-negatives:pool-written")  # a crash before the manifest
    negs = pool["neg_items"].to_numpy()
    # attribute and time-aware samplers depend on the positive: no per-user target to compare
    target = sampler.target(exclude, train.rows()) if hasattr(sampler, "target") else None
    stats = pool_statistics(negs, train, target=target)
    n_users, n_items = catalog_size(paths)
    manifest = {
        **common,
        "kind": "train_pool",
        "side": s.side,
        "rows": pool.height,
        "n_neg": s.n_neg,
        "pool_width": width,
        "negatives": pool.height * width,
        "catalog": {"users": n_users, "items": n_items},
        "exclude": s.exclude,
        "content_md5": md5_file(paths.train_pool),
        # same seed, parameters and algorithm version: same bytes (a new version explains a
        # changed pool; see negsamp.samplers.exact.ALGORITHM)
        "algorithm_version": ALGORITHM,
        # where it was drawn (base.engine, shards): never part of the bytes above
        "engine": where,
        "draws": sampler.stats.draws,
        "rejected_fraction": sampler.stats.rejected_fraction,
        "direct_draws": getattr(sampler.stats, "direct", 0),  # dense users, no rejection
        "sampler_statistics": sampler.describe(),
        "statistics": stats,
        # wall time of the sampling alone (not the audit or the write): the sweep reports it
        "timing": {
            "seconds": seconds,
            "negatives_per_second": pool.height * width / seconds if seconds > 0 else None,
        },
    }
    write_json(paths.train_pool_manifest, manifest)
    plot_negative_popularity(stats, paths.train_pool_manifest.with_name("negative_popularity.png"))
    log.info(
        "%s pool: %d positives x %d negatives x %d epochs, %.4f%% of draws rejected",
        s.name,
        train.nnz,
        width,
        s.pool_epochs,
        100 * sampler.stats.rejected_fraction,
    )
    return manifest
