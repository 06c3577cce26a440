"""Stage ``evaluate``: sampled, corrected and full-ranking metrics of one configuration.

Writes under data/metrics/<configuration>/ (see :class:`negsamp.metrics.artifacts.EvalFiles`):
metrics.json (every metric, flat), headline.json (the few ``dvc metrics show/diff`` print),
ci.json (bootstrap CIs), corrected.json (sampled vs corrected vs exact, with errors), per_user.parquet,
segments.csv (every metric by user activity and item popularity band) and plots/*.csv.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import polars as pl

from negsamp import engine
from negsamp import evaluate as ev
from negsamp.config import Config
from negsamp.device import resolve_device
from negsamp.io import atomic_write, read_json, write_json, write_parquet
from negsamp.metrics import report
from negsamp.metrics.artifacts import PLOTS, EvalFiles, headline
from negsamp.metrics.calibration import POINTWISE_LOSSES, calibration, reliability_png
from negsamp.metrics.probe import probe
from negsamp.models import load_model
from negsamp.paths import Paths
from negsamp.stages.common import positives, require
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src

_OUT = EvalFiles(VARIANT)
SPEC = StageSpec(
    name="evaluate",
    # not evaluate.n_eval_neg: the candidates file (a dep) carries it
    params=(
        "base.seed",
        "base.device",
        "evaluate.ks",
        "evaluate.batch_size",
        "evaluate.plot_k",
        "evaluate.bootstrap",
        "evaluate.ci_level",
        "evaluate.correction_gamma",
        "evaluate.user_bands",
        "evaluate.item_bands",
        "evaluate.calibration_bins",
        "evaluate.probe_min_count",
        "evaluate.probe_test_share",
    ),
    deps=rel(
        VARIANT.model_dir,
        SHARED.train,
        SHARED.valid,
        SHARED.test,
        SHARED.eval_candidates,
        SHARED.user_ids,
        SHARED.item_ids,
        SHARED.item_attributes,  # the probe's attribute families
        VARIANT.train_pool_manifest,  # negatives per positive: the calibration's correction
    ),
    code=src(
        "models",
        "metrics",
        "metrics_names.py",
        "evaluate.py",
        "interactions.py",
        "device.py",
        "rng.py",
        "stages/evaluate.py",
    ),
    outs=rel(
        _OUT.per_user,
        _OUT.segments,
        _OUT.metrics,
        _OUT.headline,
        _OUT.ci,
        _OUT.corrected,
        _OUT.calibration,
        _OUT.reliability,
        _OUT.probe,
        *(_OUT.plot(name) for name in PLOTS),
    ),
    per_variant=True,
)

log = logging.getLogger(__name__)


def candidate_scores(
    model: Any, cands: pl.DataFrame, device: Any, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """(float64 [R] held-out items' scores, float64 [R, m] their candidates' scores)."""
    import torch

    users = cands["user"].to_numpy().astype(np.int64)
    items = np.concatenate(
        [cands["item"].to_numpy().astype(np.int64)[:, None], cands["candidates"].to_numpy()],
        axis=1,
    )
    out = np.empty(items.shape, np.float64)
    with torch.no_grad():
        for lo in range(0, users.size, batch):
            u = torch.as_tensor(users[lo : lo + batch], device=device)
            it = torch.as_tensor(items[lo : lo + batch].astype(np.int64), device=device)
            out[lo : lo + batch] = model.score(u, it).double().cpu().numpy()
    return out[:, 0], out[:, 1:]


def calibration_of(
    model: Any, cands: pl.DataFrame, manifest: dict[str, Any], e: Any, device: Any
) -> tuple[dict[str, float], dict[str, Any]]:
    """ECE metrics and the reliability report of a pointwise model (``loss: bce``), trained
    on ``manifest['n_neg']`` negatives per positive; ``{}`` and why not for other models."""
    loss = getattr(model.cfg, "loss", None)
    n_neg = manifest.get("n_neg") or 0
    if loss not in POINTWISE_LOSSES or n_neg < 1:
        return {}, {"pointwise": False, "why": f"loss {loss!r} (calibration needs bce)"}
    pos, neg = candidate_scores(model, cands, device, e.batch_size)
    metrics, rep = calibration(pos, neg, int(n_neg), e.calibration_bins)
    return metrics, {"pointwise": True, **rep}


def item_embeddings(model: Any) -> np.ndarray | None:
    """float64 [n_items, d]: the model's item embedding table (NCF: GMF and MLP side by
    side); None for a model without one."""
    tables = [getattr(model, n, None) for n in ("item", "gmf_item", "mlp_item")]
    weights = [getattr(t, "weight", t) for t in tables if t is not None]
    weights = [w for w in weights if getattr(w, "dim", lambda: 0)() == 2]
    if not weights:
        return None
    return np.hstack([w.detach().double().cpu().numpy() for w in weights])


def probe_of(
    model: Any, attrs: pl.DataFrame | None, train: Any, e: Any, seed: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """The linear probes of the item embeddings (``{}`` and why not without features)."""
    emb = item_embeddings(model)
    if emb is None or attrs is None or attrs.height == 0:
        why = "no item embeddings" if emb is None else "no item features (data.item_features)"
        return {}, {"probed": False, "why": why}
    metrics, rep = probe(
        emb,
        attrs,
        train.item_counts(),
        seed,
        min_count=e.probe_min_count,
        test_share=e.probe_test_share,
    )
    return metrics, {"probed": True, **rep}


def _full_ranking() -> Any:
    """The full ranking of ``base.engine``: in this process, or user ranges as Ray tasks
    (the same ranks; see :mod:`negsamp.cluster.evaluation`)."""
    eng = engine.current()
    if not eng.is_ray:
        return ev.full_ranking
    from negsamp.cluster.evaluation import full_ranking

    return functools.partial(full_ranking, eng.ray)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths(), variant: str = "default") -> dict[str, Any]:
    """Run for configuration ``variant`` of ``sweep.configs`` (its own pool, model, metrics)."""
    cfg, paths = cfg.variant(variant), paths.for_variant(variant)
    require(paths.model_dir, paths.train, paths.test, paths.eval_candidates)
    device = resolve_device(cfg.base.device)
    model = load_model(paths.model_dir, device=str(device))
    e = cfg.evaluate
    cands = pl.read_parquet(paths.eval_candidates)
    test = pl.read_parquet(paths.test, columns=["user", "item"])
    train = positives(paths, paths.train)
    seen = positives(paths, paths.train, paths.valid)
    result = report.evaluate_model(
        model, cands, test, train, seen, e, cfg.base.seed, device, _full_ranking()
    )
    manifest = read_json(paths.train_pool_manifest) if paths.train_pool_manifest.exists() else {}
    cal_metrics, cal_report = calibration_of(model, cands, manifest, e, device)
    attrs = pl.read_parquet(paths.item_attributes) if paths.item_attributes.exists() else None
    probe_metrics, probe_report = probe_of(model, attrs, train, e, cfg.base.seed)
    result.metrics.update(cal_metrics | probe_metrics)

    out = EvalFiles(paths)
    write_parquet(out.per_user, result.per_user)
    write_json(out.ci, result.ci)
    write_json(out.corrected, result.corrected)
    atomic_write(out.segments, result.segments.write_csv().encode())
    for name in PLOTS:
        atomic_write(out.plot(name), result.plots[name].write_csv().encode())
    write_json(out.calibration, cal_report)
    atomic_write(out.reliability, reliability_png(cal_report))
    write_json(out.probe, probe_report)
    write_json(out.headline, headline(result.metrics, e.plot_k))
    write_json(out.metrics, result.metrics)  # last: its presence says the rest is complete
    k = e.plot_k
    log.info(
        "%s: sampled HR@%d %.4f | full Recall@%d %.4f (BV estimate %.4f) | coverage@%d %.3f",
        variant,
        k,
        result.metrics[f"sampled_hr_{k}"],
        k,
        result.metrics[f"full_recall_{k}"],
        result.metrics[f"bv_recall_{k}"],
        k,
        result.metrics[f"coverage_{k}"],
    )
    return result.metrics
