"""The pyfunc model the registry holds: top-K items for original user ids.

:class:`TopKRecommender` loads a saved negsamp model with its id maps and training
positives (MLflow artifacts) and answers ``predict`` with original ids; its signature,
input example and pinned requirements are built here too. Models logged before this
module existed pickled ``negsamp.registry.TopKRecommender``, which registry re-exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from negsamp.paths import Paths

DEFAULT_K = 10
_SCORE_CELLS = 1 << 26  # users x items scored at once in predict (256 MB of float32)
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


class TopKRecommender(mlflow.pyfunc.PythonModel):
    """Top-K items for original user ids; unknown users get the most popular items.

    Input: a DataFrame with a ``user`` column of original ids; ``params={"k": K}``.
    Output: one row per (user, rank): user, rank (1..K), item (original id), score,
    known_user. Training positives are never recommended to a known user; unknown
    users get the K most popular training items with score = training user count.
    """

    def load_context(self, context: Any) -> None:
        from negsamp.interactions import Interactions
        from negsamp.models import load_model

        art = context.artifacts
        self._model = load_model(art["model"], device="cpu")
        n_users, n_items = self._model.n_users, self._model.n_items
        self._users = read_id_map(art["user_ids"], "user")
        self._raw_items = read_id_map(art["item_ids"], "item").sort("dense")["raw"].to_numpy()
        train = pl.read_parquet(art["train"], columns=["user", "item"])
        self._seen = Interactions.from_frame(train, n_users, n_items)
        counts = self._seen.item_counts()
        self._popular = np.argsort(-counts, kind="stable")
        self._pop_scores = counts[self._popular].astype(np.float32)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k") or DEFAULT_K)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if "user" not in model_input.columns:
            raise ValueError(f"input needs a 'user' column, got {list(model_input.columns)}")
        raw_in = model_input["user"].to_numpy()
        query = pl.DataFrame({"raw": pl.Series(raw_in, strict=False)}).with_columns(
            pl.col("raw").cast(self._users["raw"].dtype, strict=False),
            pos=pl.int_range(pl.len()),
        )
        dense = query.join(self._users, on="raw", how="left").sort("pos")["dense"]
        known = dense.is_not_null().to_numpy()
        ids = dense.fill_null(0).to_numpy().astype(np.int64)
        kk = min(k, self._model.n_items)
        items = np.empty((ids.size, kk), np.int64)
        scores = np.empty((ids.size, kk), np.float32)
        items[~known], scores[~known] = self._popular[:kk], self._pop_scores[:kk]
        rows = np.flatnonzero(known)
        step = max(1, _SCORE_CELLS // self._model.n_items)
        for lo in range(0, rows.size, step):
            r = rows[lo : lo + step]
            items[r], scores[r] = self._model.recommend(ids[r], kk, exclude=self._seen)
        ok = np.isfinite(scores)  # -inf pads users with fewer than K unseen items
        row, col = np.nonzero(ok)
        return pd.DataFrame(
            {
                "user": raw_in[row],
                "rank": (col + 1).astype(np.int64),
                "item": self._raw_items[items[row, col]],
                "score": scores[row, col].astype(np.float64),
                "known_user": known[row],
            }
        )


def _col_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "long"
    return "double" if dtype.is_float() else "string"


def signature(paths: Paths) -> ModelSignature:
    ut = _col_type(read_id_map(paths.user_ids, "user")["raw"].dtype)
    it = _col_type(read_id_map(paths.item_ids, "item")["raw"].dtype)
    out = [ColSpec(ut, "user"), ColSpec("long", "rank"), ColSpec(it, "item")]
    out += [ColSpec("double", "score"), ColSpec("boolean", "known_user")]
    return ModelSignature(
        inputs=Schema([ColSpec(ut, "user")]),
        outputs=Schema(out),
        params=ParamSchema([ParamSpec("k", "long", DEFAULT_K)]),
    )


def input_example(paths: Paths) -> pd.DataFrame:
    """Two original user ids: saved with the model so serving clients see the request shape."""
    return read_id_map(paths.user_ids, "user").head(2).select(user="raw").to_pandas()


def requirements() -> list[str]:
    """Pinned versions of what predict imports (negsamp itself must be installed too)."""
    from importlib.metadata import version

    pkgs = ("mlflow", "torch", "numpy", "pandas", "polars", "pyarrow", "pydantic", "pyyaml")
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs]  # "+cpu": any torch build
