"""Train / validation / test splits of the interactions (pure logic, Polars).

leave_one_out (the NCF protocol): each user's latest interaction is the test item
and, when asked, the next-latest is the validation item. Ties in time are broken
by item id (the larger id counts as later), so the split is deterministic.
Users with fewer than ``min_interactions`` interactions stay in train only.

temporal: a global cutoff at the ``temporal_cutoff`` quantile of time; events after
it are test rows for users who have training history; the validation item is each
such user's latest pre-cutoff event when they have at least two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from negsamp.config import SplitCfg

_ORDER = ["user", "timestamp", "item"]


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    stats: dict[str, Any]


def split(df: pl.DataFrame, cfg: SplitCfg) -> Split:
    """df: user int32, item int32, count int32, timestamp int64 -> three frames of the same schema."""
    df = df.sort(_ORDER)
    if cfg.method == "leave_one_out":
        return _leave_one_out(df, cfg)
    return _temporal(df, cfg)


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
