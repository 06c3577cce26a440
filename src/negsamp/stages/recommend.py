"""Stage ``recommend``: the champion's top-K for every known user.

Reads what the register stage decided (``data/registry/registration.json``). When its
configuration is what the ``champion`` alias serves (promoted, or identical to the champion
with the refit kept), it loads the model folder named by ``served_model``: the refit on
every interaction, ``data/registry/refit/model``, when the gate promoted and
``registry.refit`` (issue #13), else that configuration's ``data/models/<config>/model``:
DVC-tracked folders, so ``dvc repro`` knows when the recommendations are stale. When the
challenger lost the gate, the champion keeps serving: its version (recorded in the
registration, so a new decision re-runs this stage) is loaded from the registry and scored
in the current ids; users it never saw get the most popular items they have not seen, with
a null score and ``source`` "popularity", as the served pyfunc answers them.
Every item a user has anywhere in the log (``data/interim/interactions.parquet``, train,
validation and test alike) is masked (issue #13: the two held-out items are the user's most
recent, and came back at ranks 1 and 2 when only training was masked).

Writes ``data/recommendations/``: recommendations.parquet (user, rank, item, score, source;
original ids, K rows per user) and manifest.json (what serves: configuration or champion
version, data snapshot, K, counts, catalog coverage, long-tail share), the manifest last.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import polars as pl

from negsamp import engine
from negsamp.config import Config
from negsamp.device import resolve_device
from negsamp.interactions import Interactions
from negsamp.io import read_json, write_json, write_parquet
from negsamp.models import load_model
from negsamp.paths import Paths
from negsamp.recommend import summary, to_frame, top_k, with_popularity
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
        "champion.py",
        "mlops/__init__.py",
        "mlops/champion.py",
        "mlops/errors.py",
        "mlops/uri.py",
        "stages/recommend.py",
    ),
    outs=rel(SHARED.recommendations_dir),
)

log = logging.getLogger(__name__)


def _original(path: Any, dense: str) -> pl.Series:
    """Original id of each dense id (index = dense id)."""
    df = pl.read_parquet(path).sort(dense)
    return df.drop(dense).to_series(0).alias(dense)


def _champion_serves(registration: dict[str, Any]) -> int | None:
    """The champion version to load from the registry, or None when the registration's
    own configuration is what the champion serves (or there is no champion)."""
    if registration.get("promoted", True):  # registrations before #13 carry no "promoted"
        return None
    if not registration.get("registered", True) and registration.get("refit", {}).get("refit"):
        return None  # identical to the champion, whose refit is kept here
    return registration.get("champion_version_before")


def _load(cfg: Config, paths: Paths, registration: dict[str, Any], device: Any) -> tuple:
    """(score_all, known users bool [n_users] or None, manifest fields) of what serves."""
    raw_users, raw_items = _original(paths.user_ids, "user"), _original(paths.item_ids, "item")
    version = _champion_serves(registration)
    if version is not None:
        try:
            return _from_registry(paths, registration, int(version), device)
        except Exception as err:
            from negsamp.mlops.errors import is_transient

            if is_transient(err):
                raise
            log.warning(
                "champion v%s cannot be loaded (%s): recommending with the registered "
                "configuration %s instead",
                version,
                err,
                registration["config"],
            )
    served = registration.get("served_model")  # absent in a registration before #13
    chosen = registration["config"]
    model_dir = paths.root / served if served else paths.for_variant(chosen).model_dir
    require(model_dir)
    model = load_model(model_dir, device=str(device))
    if (model.n_users, model.n_items) != (raw_users.len(), raw_items.len()):
        raise ValueError(
            f"{model_dir} scores {model.n_users} users x {model.n_items} items, but "
            f"{paths.user_ids} / {paths.item_ids} hold {raw_users.len()} x "
            f"{raw_items.len()}: the model was trained on another snapshot of the data "
            "(re-run train and register)"
        )
    refit = bool(registration.get("refit", {}).get("refit", False))
    where = {"model_dir": model_dir.relative_to(paths.root).as_posix(), "refit": refit}
    return model.score_all, None, where


def _from_registry(paths: Paths, registration: dict[str, Any], version: int, device: Any) -> tuple:
    from negsamp.champion import RemappedScorer
    from negsamp.mlops.champion import served as champion_served
    from negsamp.mlops.uri import tracking_uri

    uri, name = tracking_uri(paths.root), registration["model_name"]
    model, users, items, refit = champion_served(uri, name, version)
    current = [pl.read_parquet(f) for f in (paths.user_ids, paths.item_ids)]
    scorer = RemappedScorer.build(model, users, items, *current, device)
    log.info(
        "the challenger (v%s) lost the gate: recommending with champion v%s from %s",
        registration.get("version"),
        version,
        uri,
    )
    where = {"model_dir": f"models:/{name}/{version}", "refit": refit, "served_version": version}
    return scorer.score_all, (scorer.user_map >= 0).cpu().numpy(), where


def _top_k(*args: Any) -> tuple[Any, dict[str, Any]]:
    """(:func:`negsamp.recommend.top_k` of ``args``, where it ran): in this process, or user
    ranges as Ray tasks with ``base.engine: ray`` (the same lists)."""
    eng = engine.current()
    if not eng.is_ray:
        return top_k(*args), engine.lineage()
    from negsamp.cluster.evaluation import top_k as sharded

    top, shards = sharded(eng.ray, *args)
    return top, engine.lineage(shards)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Write every known user's top ``recommend.k`` unseen items; returns the manifest."""
    require(paths.registration, paths.interactions, paths.user_ids, paths.item_ids)
    registration = read_json(paths.registration)
    device = resolve_device(cfg.base.device)
    score_all, known, where = _load(cfg, paths, registration, device)
    raw_users, raw_items = _original(paths.user_ids, "user"), _original(paths.item_ids, "item")
    n_users, n_items = raw_users.len(), raw_items.len()
    log_ = pl.read_parquet(paths.interactions, columns=["user", "item"])
    seen = Interactions.from_frame(log_, n_users, n_items)
    if known is not None and not known.all():  # users the champion never saw: popularity
        score_all = with_popularity(score_all, known, seen.item_counts(), device)
    rc = cfg.recommend
    users = np.arange(n_users, dtype=np.int64)
    t0 = time.perf_counter()
    top, where["engine"] = _top_k(score_all, seen, users, rc.k, device, rc.batch_size)
    seconds = time.perf_counter() - t0
    model_user = np.ones(n_users, bool) if known is None else known
    frame = to_frame(top, raw_users, raw_items, model_user)
    manifest = {
        "config": registration["config"],
        "model_name": registration.get("model_name"),
        "version": registration.get("version"),
        "alias": registration.get("alias"),
        **where,
        "data_snapshot": len(cfg.data.appends),
        "k": rc.k,
        "users": int(users.size),
        "users_short": top.n_short,  # fewer than k unseen items left in the catalog
        "users_popularity": int((~model_user).sum()),  # unknown to the serving model
        "rows": frame.height,
        "items": int(n_items),
        **summary(top, seen.item_counts(), cfg.evaluate.item_bands),
    }
    write_parquet(paths.recommendations, frame)
    write_json(paths.recommendations_manifest, manifest)  # last: says the parquet is complete
    log.info(
        "recommend: %d users x %d from %s, coverage %.3f, long tail %.3f, %.0f users/s on %s",
        manifest["users"],
        rc.k,
        where["model_dir"],
        manifest["catalog_coverage"],
        manifest["longtail_share"],
        users.size / max(seconds, 1e-9),
        device,
    )
    return manifest
