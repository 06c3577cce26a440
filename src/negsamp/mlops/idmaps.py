"""Id maps as the registered model carries them: dense id -> original id (no MLflow import)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

_RAW_NAMES = ("original", "raw", "original_id", "raw_id", "id")


class IdMapError(ValueError):
    """An id map the model needs lacks its dense-id or raw-id column."""


def read_id_map(path: str | Path, dense: str) -> pl.DataFrame:
    """An id map as ``dense`` (Int64 code) and ``raw`` (original id, original dtype)."""
    df = pl.read_parquet(path)
    others = [c for c in df.columns if c != dense]
    if dense not in df.columns or not others:
        raise IdMapError(
            f"{path}: expected a {dense!r} dense-id column and a raw-id column, got {df.columns}"
        )
    prefer = [f"{dense}_id", f"raw_{dense}", f"{dense}_raw", *_RAW_NAMES]
    raw = next((c for c in prefer if c in others), others[0])
    return df.select(pl.col(dense).cast(pl.Int64).alias("dense"), pl.col(raw).alias("raw"))
