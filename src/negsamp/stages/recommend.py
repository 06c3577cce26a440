"""Stage ``recommend``: the registered configuration's top-K for every known user.

Reads which configuration the register stage chose (``data/registry/registration.json``)
and loads the model folder it serves (``served_model``): the refit on every interaction,
``data/registry/refit/model``, when the gate promoted and ``registry.refit`` (issue #13),
else that configuration's ``data/models/<config>/model``. DVC-tracked folders, not an
MLflow download, so ``dvc repro`` knows when the recommendations are stale.
Every item a user has anywhere in the log (``data/interim/interactions.parquet``, train,
validation and test alike) is masked (issue #13: the two held-out items are the user's most
recent, and came back at ranks 1 and 2 when only training was masked).

Writes ``data/recommendations/``: recommendations.parquet (user, rank, item, score; original
ids, K rows per user) and manifest.json (configuration, registered version and alias, data
snapshot, K, counts, catalog coverage, long-tail share), the manifest last.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import polars as pl

from negsamp.config import Config
from negsamp.device import resolve_device
from negsamp.interactions import Interactions
from negsamp.io import read_json, write_json, write_parquet
from negsamp.models import load_model
from negsamp.paths import Paths
from negsamp.recommend import summary, to_frame, top_k
from negsamp.stages.common import require
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src

SPEC = StageSpec(
    name="recommend",
    # evaluate.item_bands: the tail of the long-tail share; data.appends: the data snapshot
    params=("base.device", "data.appends", "evaluate.item_bands", "recommend"),
    deps=rel(
        SHARED.registration,  # which configuration was registered
        VARIANT.model_dir.parents[1],  # every configuration's model (the chosen one is read)
        SHARED.refit_dir,  # the refit the register stage made, when it made one
        SHARED.interactions,
        SHARED.user_ids,
        SHARED.item_ids,
    ),
    code=src(
        "recommend.py",
        "evaluate.py",
        "metrics",
        "models",
        "interactions.py",
        "device.py",
        "stages/recommend.py",
    ),
    outs=rel(SHARED.recommendations_dir),
)

log = logging.getLogger(__name__)


def _original(path: Any, dense: str) -> pl.Series:
    """Original id of each dense id (index = dense id)."""
    df = pl.read_parquet(path).sort(dense)
    return df.drop(dense).to_series(0).alias(dense)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Write every known user's top ``recommend.k`` unseen items; returns the manifest."""
    require(paths.registration, paths.interactions, paths.user_ids, paths.item_ids)
    registration = read_json(paths.registration)
    chosen = registration["config"]
    served = registration.get("served_model")  # absent in a registration before issue #13
    model_dir = paths.root / served if served else paths.for_variant(chosen).model_dir
    require(model_dir)
    device = resolve_device(cfg.base.device)
    model = load_model(model_dir, device=str(device))
    raw_users, raw_items = _original(paths.user_ids, "user"), _original(paths.item_ids, "item")
    if (model.n_users, model.n_items) != (raw_users.len(), raw_items.len()):
        raise ValueError(
            f"{model_dir} scores {model.n_users} users x {model.n_items} items, but "
            f"{paths.user_ids} / {paths.item_ids} hold {raw_users.len()} x {raw_items.len()}: "
            "the model was trained on another snapshot of the data (re-run train and register)"
        )
    log_ = pl.read_parquet(paths.interactions, columns=["user", "item"])
    seen = Interactions.from_frame(log_, model.n_users, model.n_items)
    rc = cfg.recommend
    users = np.arange(model.n_users, dtype=np.int64)
    t0 = time.perf_counter()
    top = top_k(model.score_all, seen, users, rc.k, device, rc.batch_size)
    seconds = time.perf_counter() - t0
    frame = to_frame(top, raw_users, raw_items)
    manifest = {
        "config": chosen,
        "model_name": registration.get("model_name"),
        "version": registration.get("version"),
        "alias": registration.get("alias"),
        "model_dir": model_dir.relative_to(paths.root).as_posix(),
        "refit": bool(registration.get("refit", {}).get("refit", False)),
        "data_snapshot": len(cfg.data.appends),
        "k": rc.k,
        "users": int(users.size),
        "users_short": top.n_short,  # fewer than k unseen items left in the catalog
        "rows": frame.height,
        "items": int(model.n_items),
        **summary(top, seen.item_counts(), cfg.evaluate.item_bands),
    }
    write_parquet(paths.recommendations, frame)
    write_json(paths.recommendations_manifest, manifest)  # last: says the parquet is complete
    log.info(
        "recommend: %d users x %d from %s (v%s), coverage %.3f, long tail %.3f, %.0f users/s on %s",
        manifest["users"],
        rc.k,
        chosen,
        manifest["version"],
        manifest["catalog_coverage"],
        manifest["longtail_share"],
        users.size / max(seconds, 1e-9),
        device,
    )
    return manifest
