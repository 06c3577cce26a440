"""Everything the evaluate stage writes, assembled from ranks (pure: reads and writes no file).

:func:`build` takes the sampled ranks, the full ranking and the training positives and
returns an :class:`Evaluation`: headline metrics, their bootstrap CIs, the table of
sampled / corrected / exact values, per-user metrics, the per-segment table and the
tables behind the DVC plots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from negsamp import evaluate as ev
from negsamp.config import EvaluateCfg
from negsamp.evaluate import FullRanking
from negsamp.interactions import Interactions
from negsamp.metrics import beyond, corrected, segments
from negsamp.metrics.ranking import (
    full_row_metrics,
    full_user_metrics,
    per_user_mean,
    sampled_row_metrics,
)
from negsamp.metrics_names import (
    BEYOND,
    CORRECTED,
    estimated_by_sampling,
    full,
    headline_names,
    sampled,
)
from negsamp.metrics_names import beyond as beyond_name
from negsamp.metrics_names import corrected as corrected_name

ESTIMATES = ("sampled", "rescaled", "bv")


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]  # metrics.json: headline name -> value, plus counts
    ci: dict[str, dict[str, float]]  # ci.json: per-user metric -> {ci_low, ci_high}
    corrected: dict[str, dict[str, float]]  # corrected.json: full_ metric -> estimates, errors
    per_user: pl.DataFrame  # per_user.parquet
    segments: pl.DataFrame  # segments.csv
    plots: dict[str, pl.DataFrame]  # plots/<name>.csv


def build(
    cands: pl.DataFrame,
    sampled_rank: np.ndarray,
    full_rank: FullRanking,
    train: Interactions,
    cfg: EvaluateCfg,
    seed: int,
) -> Evaluation:
    """Assemble every evaluation output.

    cands: user, item, candidates (the sampled protocol's rows); sampled_rank: int [rows of
    cands]; full_rank: the full ranking of the same held-out rows; train: training
    positives (popularity, activity); seed: base.seed (bootstrap draws).
    """
    ks, fr = cfg.ks, full_rank
    s_users = cands["user"].to_numpy().astype(np.int64)
    s_items = cands["item"].to_numpy().astype(np.int64)
    m = int(cands["candidates"].dtype.size)  # type: ignore[attr-defined]
    if not np.array_equal(np.unique(s_users), fr.users):
        raise ValueError("sampled candidates and the test split cover different users")
    n_neg = fr.n_negatives()[np.searchsorted(fr.users, s_users)]
    s_rows = sampled_row_metrics(sampled_rank, ks)
    s_rows |= corrected.rescaled_rows(sampled_rank, n_neg, m, ks)
    s_rows |= corrected.kr_rows(sampled_rank, n_neg, m, ks, cfg.correction_gamma, "bv")
    exact_rows = full_row_metrics(fr.below, ks)  # each held-out item on its own

    counts = train.item_counts()
    bands = beyond.item_bands(counts, cfg.item_bands)
    held = np.bincount(np.searchsorted(fr.users, fr.row_user), minlength=fr.users.size)
    n_train = train.user_degrees()[fr.users]
    activity = np.array(segments.USER_BANDS)[segments.user_bands(n_train, cfg.user_bands)]
    names = headline_names(ks)
    # three tables of the same users, ascending (checked above): put side by side, which
    # shares their columns, where joins on "user" would copy every column twice
    per_user = pl.concat(
        [
            pl.DataFrame(
                {"user": fr.users.astype(np.int32), "n_train": n_train, "n_test": held}
                | {"activity": activity}
                | beyond.user_metrics(fr.top, ks, counts, bands, train.n_users)
            ),
            full_user_metrics(fr.row_user, fr.below, fr.position, ks).drop("user"),
            per_user_mean(s_users, s_rows).drop("user"),
        ],
        how="horizontal",
    )
    per_user = per_user.select(
        "user", "n_train", "n_test", "activity", *[n for n in names if n in per_user.columns]
    )
    user_names = [n for n in names if n in per_user.columns]

    item_rows = pl.DataFrame(
        {"user": fr.row_user, "item": fr.row_item}
        | {"band": np.array(beyond.BAND_NAMES)[bands[fr.row_item]]}
        | exact_rows
    ).join(pl.DataFrame({"user": s_users, "item": s_items} | s_rows), on=["user", "item"])
    row_names = [n for n in names if n in item_rows.columns]
    seg = segments.table(
        per_user, item_rows, user_names, row_names, cfg.bootstrap, cfg.ci_level, seed
    )
    overall = seg.filter(pl.col("segment") == "all")
    ci = {
        r["metric"]: {"ci_low": r["ci_low"], "ci_high": r["ci_high"]}
        for r in overall.iter_rows(named=True)
    }
    metrics = dict(zip(overall["metric"], overall["value"], strict=True))
    metrics |= beyond.catalog_metrics(fr.top, ks, train.n_items)
    metrics = {n: metrics[n] for n in names} | {
        "n_test_users": per_user.height,
        "n_test_rows": int(fr.row_user.size),
    }
    table = _corrected_table(ks, metrics, per_user_mean(fr.row_user, exact_rows))
    return Evaluation(metrics, ci, table, per_user, seg, _plots(cfg, metrics, table, seg))


def evaluate_model(
    model: Any,
    cands: pl.DataFrame,
    test: pl.DataFrame,
    train: Interactions,
    seen: Interactions,
    cfg: EvaluateCfg,
    seed: int,
    device: Any,
    full_ranking: Callable[..., FullRanking] = ev.full_ranking,
) -> Evaluation:
    """Rank the held-out items with ``model`` both ways and :func:`build` the evaluation:
    what the evaluate stage and :func:`negsamp.evaluate` compute.

    cands: the candidates stage's rows (user, item, candidates); test: user, item of the
    held-out rows; train: training positives; seen: the positives masked in full ranking
    (train and validation); full_ranking: :func:`negsamp.evaluate.full_ranking` or a
    function of the same arguments and result (the Ray engine's sharded one).
    """
    s_ranks = ev.sampled_ranks(model.score, cands, device, cfg.batch_size)
    full_rank = full_ranking(model.score_all, seen, test, max(cfg.ks), device, cfg.batch_size)
    return build(cands, s_ranks, full_rank, train, cfg, seed)


def _corrected_table(
    ks: tuple[int, ...],
    metrics: dict[str, float],
    exact_user: pl.DataFrame,
) -> dict[str, dict[str, float]]:
    """full_ metric -> exact value, each estimate of it and the estimate's error.

    "exact" scores each held-out item against the irrelevant items only, which is what
    a sampled rank estimates; with one held-out item per user it is the full_ value.
    """
    name_of = {e: dict(corrected.targets(ks, e)) for e in ("rescaled", "bv")}  # full -> estimate
    out = {}
    for full_name, sampled_name in estimated_by_sampling(ks):
        exact = float(exact_user[full_name].mean())
        row = {"exact": exact, "sampled": metrics[sampled_name]}
        row |= {e: metrics[name_of[e][full_name]] for e in ("rescaled", "bv")}
        row |= {f"{e}_error": row[e] - exact for e in ESTIMATES}
        out[full_name] = row
    return out


def _plots(
    cfg: EvaluateCfg,
    metrics: dict[str, float],
    table: dict[str, dict[str, float]],
    seg: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """The tables behind the DVC plots (column names without K; plot_k is in the titles)."""
    k = cfg.plot_k
    at_k = [
        {"k": kk}
        | {f"full_{m}": metrics[full(m, kk)] for m in ("recall", "precision", "ndcg", "map")}
        | {f"sampled_{m}": metrics[sampled(m, kk)] for m in ("hr", "ndcg")}
        | {
            f"{e}_{m}": metrics[corrected_name(e, m, kk)]
            for e in ("rescaled", "bv")
            for m in CORRECTED
        }
        | {b: metrics[beyond_name(b, kk)] for b in BEYOND}
        for kk in cfg.ks
    ]
    shown = [full("ndcg", k), full("recall", k), sampled("hr", k), sampled("ndcg", k)]
    shown += [corrected_name("bv", m, k) for m in CORRECTED]

    def by(segment: str, bands: tuple[str, ...]) -> pl.DataFrame:
        rows = seg.filter(pl.col("segment") == segment, pl.col("metric").is_in(shown))
        wide = rows.pivot("metric", index=["band", "n_users"], values="value")
        wide = wide.rename({n: n.removesuffix(f"_{k}") for n in shown if n in wide.columns})
        order = pl.DataFrame({"band": list(bands), "_o": range(len(bands))})
        return wide.join(order, on="band").sort("_o").drop("_o")

    estimators = [
        {"estimator": e}
        | {m: table[full(m, k)][e] for m in CORRECTED}
        | {"mrr": table[full("mrr")][e]}
        for e in ("exact", "sampled", "rescaled", "bv")
    ]
    return {
        "at_k": pl.DataFrame(at_k),
        "by_item_popularity": by("item_popularity", beyond.BAND_NAMES),
        "by_user_activity": by("user_activity", segments.USER_BANDS),
        "estimators": pl.DataFrame(estimators),
    }
