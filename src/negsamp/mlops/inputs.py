"""The register stage's inputs, checked before MLflow is touched (no MLflow import).

A missing file, an unreadable JSON, a ``registry.metric`` that the evaluation did not
produce or that is NaN: each is a :class:`RegistrationError` raised before any run is
logged, so a refused registration leaves the tracking store and the registry alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl

from negsamp.config import Config
from negsamp.io import read_json
from negsamp.metrics_names import is_catalog_level
from negsamp.mlops.errors import RegistrationError
from negsamp.mlops.idmaps import IdMapError, read_id_map
from negsamp.models import CONFIG_FILE, WEIGHTS_FILE
from negsamp.paths import Paths


def required_inputs(paths: Paths) -> dict[str, Path]:
    """Every file the register stage reads (declare them all as deps in dvc.yaml)."""
    return {
        "model config": paths.model_dir / CONFIG_FILE,
        "model weights": paths.model_dir / WEIGHTS_FILE,
        "train history": paths.train_history,
        "metrics": paths.metrics,
        "per-user metrics": paths.per_user,
        "train pool manifest": paths.train_pool_manifest,
        "eval candidates manifest": paths.eval_candidates_manifest,
        "train pool": paths.train_pool,
        "eval candidates": paths.eval_candidates,
        "user id map": paths.user_ids,
        "item id map": paths.item_ids,
        "interactions": paths.interactions,
        "train split": paths.train,
        "test split": paths.test,
        "split report": paths.split_report,
    }


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_inputs(cfg: Config, paths: Paths) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Validate inputs before MLflow is touched; returns (numeric metrics, train history)."""
    missing = [f"{what} ({p})" for what, p in required_inputs(paths).items() if not p.is_file()]
    if missing:
        raise RegistrationError(
            "cannot register, missing inputs: " + "; ".join(missing) + " (run the earlier stages)"
        )
    try:
        raw, history = read_json(paths.metrics), read_json(paths.train_history)
        meta = read_json(paths.model_dir / CONFIG_FILE)
    except ValueError as err:
        raise RegistrationError(f"unreadable JSON input: {err}") from None
    if not isinstance(raw, dict):
        raise RegistrationError(f"{paths.metrics} must hold a JSON object of metric -> number")
    name, value = cfg.registry.metric, raw.get(cfg.registry.metric)
    if name not in raw:
        raise RegistrationError(
            f"{paths.metrics} has no {name!r} (registry.metric); re-run evaluate"
        )
    if not _number(value):
        raise RegistrationError(f"{paths.metrics}: {name}={value!r} is not a finite number")
    if not isinstance(history, list) or any("epoch" not in h or "loss" not in h for h in history):
        raise RegistrationError(f"{paths.train_history} must be a list of {{epoch, loss, ...}}")
    for what, p, col, n in (
        ("users", paths.user_ids, "user", meta["n_users"]),
        ("items", paths.item_ids, "item", meta["n_items"]),
    ):
        try:
            got = read_id_map(p, col).height
        except IdMapError as err:
            raise RegistrationError(str(err)) from None
        if got != n:
            raise RegistrationError(f"{p} maps {got} {what} but the model has {n}: re-run train")
    return {k: float(v) for k, v in raw.items() if _number(v)}, history


def challenger_per_user(cfg: Config, paths: Paths) -> pl.DataFrame | None:
    """``user`` and ``registry.metric`` of the per-user metrics; None for a catalog metric.

    A per-user metric is compared user by user with the champion's, so every user's value
    must be there and finite; a catalog-level one (coverage, gini) is one number per model,
    compared as such (its finiteness is :func:`check_inputs`'s).
    """
    name = cfg.registry.metric
    if is_catalog_level(name):
        return None
    cols = pl.read_parquet_schema(paths.per_user)
    if name not in cols:
        raise RegistrationError(
            f"{paths.per_user} has no per-user {name!r} (registry.metric), so the gate cannot "
            "compare it with the champion user by user: re-run evaluate"
        )
    frame = pl.read_parquet(paths.per_user, columns=["user", name])
    bad = frame.height - frame.filter(pl.col(name).cast(pl.Float64).is_finite()).height
    if bad or frame.height == 0:
        raise RegistrationError(
            f"{paths.per_user}: {name} is missing or not finite for {bad} of {frame.height} "
            "users: re-run evaluate"
        )
    return frame
