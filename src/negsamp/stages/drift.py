"""Drift check (not a DVC stage: it decides whether the pipeline runs again).

Reference window: the interactions the champion was trained on, i.e. the snapshot
recorded in its lineage tag ``data_snapshot`` (how many appended batches it saw).
New window: every batch appended since. Writes ``data/drift/`` (JSON, Markdown,
HTML, plots) and logs the report to MLflow in the ``<experiment>-drift`` experiment.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from negsamp import drift
from negsamp.config import Config
from negsamp.data.encode import encode, to_implicit
from negsamp.paths import Paths
from negsamp.stages.ingest import _rooted, read_snapshot

log = logging.getLogger(__name__)

PERFORMANCE_METRICS = ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10")


def windows(cfg: Config, paths: Paths, snapshot: int) -> tuple[pl.DataFrame, ...]:
    """(reference, new, user ids, item ids): interactions of batches <= ``snapshot`` and
    > it, in the current snapshot's dense ids (stable across snapshots, so old ids mean
    the same), with the id maps of the whole current snapshot (read from the raw log: the
    interim files may predate the latest append)."""
    raw = read_snapshot(_rooted(cfg.data, paths), paths)
    thr = cfg.data.rating_threshold
    _, users, items = encode(to_implicit(raw, thr))

    def window(rows: pl.DataFrame) -> pl.DataFrame:
        if rows.height == 0:
            return pl.DataFrame(
                schema={
                    "user": pl.Int32,
                    "item": pl.Int32,
                    "count": pl.Int32,
                    "timestamp": pl.Int64,
                }
            )
        imp = to_implicit(rows.drop("_batch"), thr)
        return (
            imp.rename({"user": "original"})
            .join(users, on="original")
            .drop("original")
            .rename({"item": "original"})
            .join(items, on="original")
            .select("user", "item", "count", pl.col("timestamp").fill_null(0))
        )

    ref = window(raw.filter(pl.col("_batch") <= snapshot))
    new = window(raw.filter(pl.col("_batch") > snapshot))
    return ref, new, users, items


def _champion(cfg: Config, paths: Paths, load_model: bool) -> Any:
    """The champion (:class:`negsamp.mlops.champion.Champion`, alias read once) or None."""
    from negsamp.mlops.champion import read
    from negsamp.mlops.uri import tracking_uri

    return read(tracking_uri(paths.root), cfg.registry.model_name, load_model=load_model)


def _negative_bands(cfg: Config, run_id: str, uri: str, ref: pl.DataFrame, n_items: int) -> Any:
    """(manifest histogram, histogram the configured sampler would draw now) or None."""
    from negsamp.mlops.artifacts import POOL_MANIFEST, run_json

    alpha = {"uniform": 0.0, "popularity": getattr(cfg.sampler.active, "alpha", None)}.get(
        cfg.sampler.name
    )
    if alpha is None:
        return None  # batch-side or learned samplers have no closed-form target here
    try:
        manifest = run_json(run_id, POOL_MANIFEST, uri)
        ref_hist = manifest["statistics"]["popularity_deciles"]["negatives"]
    except Exception as err:  # noqa: BLE001 - an old manifest without bands: skip the signal
        log.warning("champion pool manifest has no popularity bands (%s): negative_js skipped", err)
        return None
    counts = np.bincount(ref["item"].to_numpy(), minlength=n_items)
    return np.asarray(ref_hist, float), drift.expected_negative_band_hist(
        counts, alpha, len(ref_hist)
    )


def champion_performance(
    cfg: Config,
    paths: Paths,
    champion: Any,
    ref: pl.DataFrame,
    new: pl.DataFrame,
    ids: tuple[pl.DataFrame, pl.DataFrame],
) -> tuple[dict[str, float], dict[str, float]] | None:
    """(registered metrics, metrics now): the champion on the new window's held-out items.

    ``champion`` is the :class:`negsamp.mlops.champion.Champion` the check compares with;
    None when its model cannot be loaded.

    Each user of the new window holds out their latest new interaction (ties by item);
    everything else they did is masked, and the held-out item is ranked among
    ``evaluate.n_eval_neg`` uniform candidates and against the full catalog.
    """
    from negsamp.champion import RemappedScorer
    from negsamp.device import resolve_device
    from negsamp.interactions import Interactions
    from negsamp.promotion import evaluate_scorer
    from negsamp.samplers.pool import eval_candidates

    if champion.model is None:
        log.warning(
            "champion v%d: %s: performance_drop skipped", champion.version, champion.problem
        )
        return None
    held = new.sort("user", "timestamp", "item").group_by("user", maintain_order=True).last()
    rest = pl.concat([ref, new]).join(held.select("user", "item"), on=["user", "item"], how="anti")
    held = held.join(rest.select("user").unique(), on="user", how="semi")  # needs some history
    if held.height == 0:
        return None
    users, items = ids
    n_users, n_items = users.height, items.height
    seen = Interactions.from_frame(rest, n_users, n_items)
    known = Interactions.from_frame(pl.concat([ref, new]), n_users, n_items)
    test = held.select("user", "item")
    cands = eval_candidates(known, test, cfg.evaluate.n_eval_neg, cfg.base.seed)
    device = resolve_device(cfg.base.device)
    scorer = RemappedScorer.build(
        champion.model, champion.users, champion.items, users, items, device
    )
    result = evaluate_scorer(scorer, cands, test, seen, seen, cfg.evaluate, cfg.base.seed, device)
    logged = champion.run.data.metrics
    registered = {m: float(logged[m]) for m in PERFORMANCE_METRICS if m in logged}
    return registered, {
        m: float(result.metrics[m]) for m in PERFORMANCE_METRICS if m in result.metrics
    }


def run(
    cfg: Config, paths: Paths = Paths(), performance: Any = champion_performance
) -> dict[str, Any]:
    """Compute every drift signal; returns {fired, summary, values, report folder, ...}.

    ``performance`` maps (cfg, paths, champion, ref, new, id maps) to (registered metrics,
    current metrics) for the performance-decay signal (None skips it). The champion's
    alias is read once; its run must be readable (its ``data_snapshot`` tag is the
    reference window).
    """
    from negsamp.mlops.tracking import log_drift
    from negsamp.mlops.uri import tracking_uri

    uri = tracking_uri(paths.root)
    champ = _champion(cfg, paths, load_model=performance is not None)
    out_dir = paths.root / "data" / "drift"
    if champ is None:
        return {
            "fired": ["no_champion"],
            "summary": "no champion registered yet",
            "values": {},
            "report": None,
        }
    if champ.run is None:
        raise RuntimeError(
            f"{champ.name} v{champ.version} (champion): {champ.problem}, so the data it was "
            "trained on is unknown: register a new champion (`negsamp run`)"
        )
    snapshot = int(champ.run.data.tags.get("data_snapshot", "0"))
    ref, new, users, items = windows(cfg, paths, snapshot)
    n_items = items.height
    if new.height == 0:
        summary = f"no data since champion v{champ.version}'s snapshot {snapshot}"
        return {
            "fired": [],
            "summary": summary,
            "values": {},
            "report": None,
            "champion": champ.version,
        }
    window = drift.compare_windows(
        ref,
        new,
        n_items,
        popularity_bins=cfg.drift.popularity_bins,
        activity_bins=cfg.drift.activity_bins,
    )
    bands = _negative_bands(cfg, champ.run_id, uri, pl.concat([ref, new]), n_items)
    perf = performance(cfg, paths, champ, ref, new, (users, items)) if performance else None
    report = drift.make_report(window, cfg.drift, negative_bands=bands, performance=perf)
    files = drift.write_report(report, out_dir)
    summary = "fired: " + ", ".join(report.fired) if report.any_fired else "no signal fired"
    log_drift(
        uri,
        f"{cfg.registry.experiment}-drift",
        f"drift-vs-v{champ.version}",
        {
            "champion_version": str(champ.version),
            "fired": ",".join(report.fired) or "none",
            "data_snapshot_reference": str(snapshot),
            "data_snapshot_now": str(len(cfg.data.appends)),
        },
        report.values,
        list(files.values()),
    )
    log.info(
        "drift vs champion v%s (snapshot %d -> %d): %s",
        champ.version,
        snapshot,
        len(cfg.data.appends),
        summary,
    )
    return {
        "fired": list(report.fired),
        "summary": summary,
        "values": {k: v for k, v in report.values.items() if isinstance(v, int | float)},
        "report": str(files.get("json", out_dir)),
        "champion": champ.version,
    }
