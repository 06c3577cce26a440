"""The pyfunc model the registry holds: top-K items for original user ids.

:class:`TopKRecommender` loads a saved negsamp model with its id maps and the whole
interaction log (MLflow artifacts) and answers ``predict`` with original ids; its signature,
input example and pinned requirements are built here too, and :func:`log_pyfunc` logs it.

The pickle of a logged model names the class by module: models logged before this package
existed name ``negsamp.pyfunc.TopKRecommender`` or ``negsamp.registry.TopKRecommender``;
those two modules remain as shims that resolve the name here.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array

from negsamp import faults
from negsamp.mlops.idmaps import read_id_map
from negsamp.paths import Paths

DEFAULT_K = 10
COLUMNS = ("user", "rank", "item", "score", "known_user", "source")
_SCORE_CELLS = 1 << 26  # users x items scored at once in predict (256 MB of float32)


class TopKRecommender(mlflow.pyfunc.PythonModel):
    """Top-K items for original user ids; unknown users get the most popular items.

    Input: a DataFrame with a ``user`` column of original ids; ``params={"k": K}``.
    Output: one row per (user, rank): user, rank (1..K), item (original id), score,
    known_user, source. No item the user has anywhere in the log (training, validation
    and test alike: issue #13, the held-out items are the user's latest) is recommended
    to a known user (``source`` "model", ``score`` the model's). Unknown users get the K
    most popular items of the log (``source`` "popularity", ``known_user`` false): their
    ``score`` is null (NaN), as a popularity count is not on the model's scale.

    An optional ``history`` column (a list of original item ids per row, oldest first: the
    user's recent items) is the request's history: a sequential model (``sasrec``) scores the
    next item after it, known user or not (``source`` "model"), and never returns an item of
    it; another model excludes it from a known user's items too (an unknown user still gets
    the popular items). Items the catalog does not know are ignored; an empty or null history is no
    history.
    """

    def load_context(self, context: Any) -> None:
        from negsamp.interactions import Interactions
        from negsamp.models import load_model

        art = context.artifacts
        self._model = load_model(art["model"], device="cpu")
        # a refit version (issue #13) also carries the held-out model the gate re-evaluates
        self._heldout_dir = art.get("heldout_model")
        n_users, n_items = self._model.n_users, self._model.n_items
        self._users = read_id_map(art["user_ids"], "user")
        self._items = read_id_map(art["item_ids"], "item")
        self._raw_items = self._items.sort("dense")["raw"].to_numpy()
        # models logged before the whole log was an artifact carry only the training split
        seen = art.get("interactions") or art["train"]
        log_ = pl.read_parquet(seen, columns=["user", "item"])
        self._seen = Interactions.from_frame(log_, n_users, n_items)
        self._popular = np.argsort(-self._seen.item_counts(), kind="stable")

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
        items[~known], scores[~known] = self._popular[:kk], np.nan
        hist = self._histories(model_input)
        given = hist is not None and hist.shape[1] > 0
        has = (hist >= 0).any(1) if given else np.zeros(ids.size, bool)
        by_history = has & (known | self._sequential)
        rows = np.flatnonzero(known & ~by_history)
        step = max(1, _SCORE_CELLS // self._model.n_items)
        for lo in range(0, rows.size, step):
            r = rows[lo : lo + step]
            items[r], scores[r] = self._model.recommend(ids[r], kk, exclude=self._seen)
        rows = np.flatnonzero(by_history)
        for lo in range(0, rows.size, step):
            r = rows[lo : lo + step]
            items[r], scores[r] = self._with_history(ids[r], known[r], hist[r], kk)
        modelled = known | by_history  # a history answers an unknown user too
        ok = scores != -np.inf  # -inf pads users with fewer than K unseen items
        row, col = np.nonzero(ok)
        return pd.DataFrame(
            {
                "user": raw_in[row],
                "rank": (col + 1).astype(np.int64),
                "item": self._raw_items[items[row, col]],
                "score": scores[row, col].astype(np.float64),
                "known_user": known[row],
                "source": np.where(modelled[row], "model", "popularity"),
            }
        )

    @property
    def _sequential(self) -> bool:
        return bool(getattr(self._model, "sequential", False))

    def _histories(self, model_input: pd.DataFrame) -> np.ndarray | None:
        """int64 [rows, L]: each row's ``history`` in dense ids, right-aligned, -1 padded; L
        the longest history (at least a sequential model's ``max_len``): every item is
        masked, the model reads the latest ``max_len``."""
        if "history" not in model_input.columns:
            return None
        lists = [list(h) if _is_list(h) else [] for h in model_input["history"].tolist()]
        raw = pl.Series("raw", lists, strict=False)
        df = pl.DataFrame({"row": np.arange(len(lists)), "raw": raw}).explode("raw")
        dtype = self._items["raw"].dtype
        df = df.with_columns(pl.col("raw").cast(dtype, strict=False))
        df = df.join(self._items, on="raw", how="left", maintain_order="left")
        df = df.drop_nulls("dense").with_columns(
            back=pl.len().over("row") - 1 - pl.int_range(pl.len()).over("row")
        )
        width = int(df["back"].max() or 0) + 1
        width = max(width, self._model.cfg.max_len) if self._sequential else width
        out = np.full((len(lists), width), -1, np.int64)
        out[df["row"].to_numpy(), width - 1 - df["back"].to_numpy()] = df["dense"].to_numpy()
        return out

    def _with_history(
        self, users: np.ndarray, known: np.ndarray, hist: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of rows with a request history: a sequential model scores after it; none of
        its items (nor, for a known user, an item of the log) is returned."""
        import torch

        from negsamp.evaluate import dense_mask

        with torch.no_grad():
            if self._sequential:
                latest = hist[:, -self._model.cfg.max_len :]
                seq = torch.as_tensor(np.where(latest < 0, self._model.pad, latest))
                s = self._model.score_sequences(seq).float()
            else:
                s = self._model.score_all(torch.as_tensor(users)).float()
        mask = dense_mask(self._seen, users, "cpu") & torch.as_tensor(known)[:, None]
        r, c = np.nonzero(hist >= 0)
        mask[torch.as_tensor(r), torch.as_tensor(hist[r, c])] = True
        s.masked_fill_(mask, float("-inf"))
        top = torch.topk(s, k, dim=1)
        return top.indices.numpy(), top.values.numpy()


def _is_list(h: Any) -> bool:
    """A history cell holds items (a list or array), not None / NaN (no history)."""
    return isinstance(h, list | tuple | np.ndarray | pd.Series)


def _col_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "long"
    return "double" if dtype.is_float() else "string"


def signature(paths: Paths) -> ModelSignature:
    ut = _col_type(read_id_map(paths.user_ids, "user")["raw"].dtype)
    it = _col_type(read_id_map(paths.item_ids, "item")["raw"].dtype)
    out = [ColSpec(ut, "user"), ColSpec("long", "rank"), ColSpec(it, "item")]
    out += [ColSpec("double", "score", required=False), ColSpec("boolean", "known_user")]
    out += [ColSpec("string", "source")]
    return ModelSignature(
        # history: the request's recent items, oldest first (sequential models score after it)
        inputs=Schema(
            [ColSpec(ut, "user"), ColSpec(Array(DataType[it]), "history", required=False)]
        ),
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


class _DropCloudpickleNotice(logging.Filter):
    """TopKRecommender pickles by reference to its module (no code in the pickle)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence the CloudPickle notice and the tqdm bars of MLflow's local artifact copies."""
    key, notice = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", _DropCloudpickleNotice()
    was_set = key in os.environ
    os.environ.setdefault(key, "false")
    logging.getLogger("mlflow.pyfunc").addFilter(notice)
    try:
        yield
    finally:
        logging.getLogger("mlflow.pyfunc").removeFilter(notice)
        if not was_set:
            os.environ.pop(key, None)


def _smoke_test(model_uri: str, example: pd.DataFrame) -> None:
    """Load the logged pyfunc and predict the example; MLflow's own check only warns."""
    out = mlflow.pyfunc.load_model(model_uri).predict(example)
    if list(out.columns) != list(COLUMNS) or out.empty:
        raise RuntimeError(f"logged model {model_uri} predicted an unexpected frame:\n{out}")


def log_pyfunc(paths: Paths, served: Path | None = None) -> str:
    """Log configuration ``paths``' model into the active run, check it predicts; its URI.

    ``served``: the model folder the version serves instead (the refit of issue #13); the
    configuration's own, held-out model then goes with it as ``heldout_model``, the one a
    later gate re-evaluates (the refit has seen the test items).
    """
    artifacts = {
        "model": str((served or paths.model_dir).resolve()),
        "user_ids": str(paths.user_ids.resolve()),
        "item_ids": str(paths.item_ids.resolve()),
        "interactions": str(paths.interactions.resolve()),  # the whole log: masked
    }
    if served is not None:
        artifacts["heldout_model"] = str(paths.model_dir.resolve())
    with _quiet_mlflow():
        info = mlflow.pyfunc.log_model(
            name="recommender",
            python_model=TopKRecommender(),
            artifacts=artifacts,
            signature=signature(paths),
            input_example=input_example(paths),
            pip_requirements=requirements(),
        )
        faults.point("register:model-logged")  # a crash between logging and registering
        _smoke_test(info.model_uri, input_example(paths))
    return info.model_uri
