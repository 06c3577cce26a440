"""Train / validation / test splits of the interactions (pure logic, Polars).

leave_one_out (the NCF protocol): each user's latest interaction is the test item
and, when asked, the next-latest is the validation item. Ties in time are broken
by item id (the larger id counts as later), so the split is deterministic.
Users with fewer than ``min_interactions`` interactions stay in train only.

temporal: a global cutoff at the ``temporal_cutoff`` quantile of time; events after
it are test rows for users who have training history; the validation item is each
such user's latest pre-cutoff event when they have at least two.

random (leave-one-out without time): each eligible user's test item is one of their
items drawn at random, the validation item another. random_holdout: a
``holdout_fraction`` of each eligible user's items (at least one, never all) is test,
one more is the validation item. Both draw from the ``SPLIT`` stream of the seed over
the rows in (user, item) order, so the same data and seed give the same split whatever
the input's row order.

A log without a time order (every timestamp equal: ingest writes 0 when the source has
none) cannot be split by time: leave_one_out becomes random and temporal becomes
random_holdout, with a warning (a "latest" item would be the highest item id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from negsamp.config import SplitCfg
from negsamp.rng import Stream, numpy_rng

log = logging.getLogger(__name__)

_ORDER = ["user", "timestamp", "item"]
# what each method becomes on a log without a time order
_WITHOUT_TIME = {"leave_one_out": "random", "temporal": "random_holdout"}


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    stats: dict[str, Any]


def has_time_order(df: pl.DataFrame) -> bool:
    """True when the timestamps order anything (not all equal, as ingest's 0s for none)."""
    return "timestamp" in df.columns and df["timestamp"].n_unique() > 1


def resolve_method(df: pl.DataFrame, cfg: SplitCfg) -> str:
    """``cfg.method``, or its random counterpart when ``df`` has no time order (warned)."""
    method = cfg.method
    if method in _WITHOUT_TIME and not has_time_order(df):
        log.warning(
            "the interactions have no time order (no timestamps, or all equal): split.method "
            "%s would hold out by item id, so the %s split is used (seeded by base.seed); "
            "set split.method: %s to say so and silence this warning",
            method,
            _WITHOUT_TIME[method],
            _WITHOUT_TIME[method],
        )
        method = _WITHOUT_TIME[method]
    return method


def split(df: pl.DataFrame, cfg: SplitCfg, seed: int = 0) -> Split:
    """df: user int32, item int32, count int32, timestamp int64 (and any other columns, kept)
    -> three frames of the same schema. ``seed`` (base.seed) drives the random methods."""
    method = resolve_method(df, cfg)
    df = df.sort(_ORDER)
    if method == "leave_one_out":
        s = _leave_one_out(df, cfg)
    elif method == "temporal":
        s = _temporal(df, cfg)
    else:
        s = _random(df, cfg, seed, holdout=method == "random_holdout")
    s.stats["requested_method"] = cfg.method
    s.stats["has_time_order"] = has_time_order(df)
    s.stats["n_users"] = df["user"].n_unique()
    return s


def check_test_users(stats: dict[str, Any], min_share: float, where: str) -> None:
    """Refuse a split whose test users are fewer than ``min_share`` of all users."""
    n, k = stats["n_users"], stats["test_users"]
    if stats["method"] == "temporal":
        fix = "move split.temporal_cutoff earlier or use split.method: leave_one_out"
    else:
        fix = "lower split.min_interactions (users with fewer stay in train only)"
    if n and k < min_share * n:
        raise ValueError(
            f"{where}: the {stats['method']} split leaves {k} of {n} users "
            f"({k / n:.1%}) with test items, fewer than split.min_test_user_share="
            f"{min_share:g} ({min_share * n:.0f} users), so the metrics would rest on too few "
            f"users: {fix}, or lower split.min_test_user_share"
        )


def min_needed(cfg: SplitCfg) -> int:
    """Interactions a user needs to get a test (and, when asked, a validation) item."""
    return max(cfg.min_interactions, 3 if cfg.validation else 2)


def _leave_one_out(df: pl.DataFrame, cfg: SplitCfg) -> Split:
    need = min_needed(cfg)
    from_end = pl.len().over("user") - 1 - pl.int_range(pl.len()).over("user")
    tagged = df.with_columns(
        _from_end=from_end,
        _eligible=pl.len().over("user") >= need,
    )
    is_test = pl.col("_eligible") & (pl.col("_from_end") == 0)
    is_valid = pl.col("_eligible") & (pl.col("_from_end") == 1) & pl.lit(cfg.validation)
    test = tagged.filter(is_test)
    valid = tagged.filter(is_valid)
    train = tagged.filter(~is_test & ~is_valid)
    n_short = tagged.filter(~pl.col("_eligible"))["user"].n_unique()
    drop = ["_from_end", "_eligible"]
    return Split(
        train.drop(drop),
        valid.drop(drop),
        test.drop(drop),
        _stats(train, valid, test, "leave_one_out", train_only_users=n_short, min_needed=need),
    )


def _random(df: pl.DataFrame, cfg: SplitCfg, seed: int, *, holdout: bool) -> Split:
    """Held-out items drawn at random per user (see module doc); df sorted by _ORDER."""
    need = min_needed(cfg)
    df = df.sort("user", "item")
    keys = numpy_rng(seed, Stream.SPLIT).random(df.height)
    n = pl.len().over("user")
    rank = pl.col("_key").rank("ordinal").over("user") - 1  # 0 = held out first
    if holdout:  # round(fraction * n), at least 1, leaving 1 (2 with validation) in train
        n_test = (n * cfg.holdout_fraction + 0.5).floor().cast(pl.Int64)
        n_test = pl.min_horizontal(pl.max_horizontal(n_test, 1), n - (2 if cfg.validation else 1))
    else:
        n_test = pl.lit(1, pl.Int64)
    tagged = df.with_columns(_key=pl.Series(keys)).with_columns(
        _rank=rank.cast(pl.Int64), _n_test=n_test, _eligible=n >= need
    )
    is_test = pl.col("_eligible") & (pl.col("_rank") < pl.col("_n_test"))
    is_valid = pl.col("_eligible") & (pl.col("_rank") == pl.col("_n_test")) & pl.lit(cfg.validation)
    drop = ["_key", "_rank", "_n_test", "_eligible"]
    test = tagged.filter(is_test).drop(drop).sort(_ORDER)
    valid = tagged.filter(is_valid).drop(drop).sort(_ORDER)
    train = tagged.filter(~is_test & ~is_valid).drop(drop).sort(_ORDER)
    n_short = tagged.filter(~pl.col("_eligible"))["user"].n_unique()
    method = "random_holdout" if holdout else "random"
    extra: dict[str, Any] = {"train_only_users": n_short, "min_needed": need}
    if holdout:
        extra["holdout_fraction"] = cfg.holdout_fraction
    return Split(train, valid, test, _stats(train, valid, test, method, **extra))


def _temporal(df: pl.DataFrame, cfg: SplitCfg) -> Split:
    cutoff = int(df["timestamp"].quantile(cfg.temporal_cutoff, interpolation="lower"))
    before = df.filter(pl.col("timestamp") <= cutoff)
    after = df.filter(pl.col("timestamp") > cutoff)
    if cfg.validation:
        n_before = pl.len().over("user")
        last = pl.int_range(pl.len()).over("user") == n_before - 1
        tagged = before.with_columns(_valid=last & (n_before >= 2))
        valid = tagged.filter("_valid").drop("_valid")
        train = tagged.filter(~pl.col("_valid")).drop("_valid")
    else:
        train, valid = before, before.clear()
    test = after.join(train.select("user").unique(), on="user", how="semi")
    dropped = after.height - test.height
    return Split(
        train,
        valid,
        test,
        _stats(train, valid, test, "temporal", cutoff=cutoff, test_rows_without_history=dropped),
    )


def _stats(
    train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, method: str, **extra: Any
) -> dict[str, Any]:
    return {
        "method": method,
        "train_rows": train.height,
        "valid_rows": valid.height,
        "test_rows": test.height,
        "train_users": train["user"].n_unique(),
        "test_users": test["user"].n_unique(),
        **extra,
    }


# `negsamp.split(...)` is the Python API's split (negsamp.api.split); this module is callable as it
__import__("negsamp").callable_module(__name__)
