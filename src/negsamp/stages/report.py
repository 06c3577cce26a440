"""Stage ``report``: compare every configuration of ``sweep.configs`` side by side.

Reads each configuration's metrics.json, ci.json, per_user.parquet, history.json and pool
manifest; writes ``data/report/``: comparison.json (the table), comparison.md and
comparison.html (for people who do not open MLflow) and the four plots they show. The
register stage logs the folder to the sweep's MLflow parent run.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

import polars as pl

from negsamp.config import Config
from negsamp.io import atomic_write, read_json, write_json
from negsamp.metrics.artifacts import EvalFiles
from negsamp.paths import Paths
from negsamp.stages.common import require
from negsamp.stages.spec import SHARED, VARIANT, StageSpec, rel, src
from negsamp.sweep import plots, render
from negsamp.sweep.table import Comparison, ConfigResult, build

SPEC = StageSpec(
    name="report",
    # sampler, model.name: the table names each configuration's sampler settings and model;
    # train.monitor, train.restore_best, split.validation: the choice on validation
    params=(
        "base.seed",
        "split.validation",
        "evaluate.plot_k",
        "evaluate.ci_level",
        "model.name",
        "train.monitor",
        "train.restore_best",
        "registry.metric",
        "registry.greater_is_better",
        "registry.n_resamples",
        "sampler",
        "sweep.configs",
    ),
    # every configuration's metrics, CIs and per-user metrics; training history (time,
    # throughput); pool manifest (sampler speed)
    deps=rel(
        VARIANT.metrics.parents[1], VARIANT.model_dir.parents[1], VARIANT.train_pool.parents[1]
    ),
    code=src("sweep", "metrics", "rng.py", "stages/report.py"),
    outs=rel(SHARED.report_dir),
)

log = logging.getLogger(__name__)


def load_result(cfg: Config, paths: Paths, name: str) -> ConfigResult:
    """Configuration ``name``'s outputs, as the comparison needs them."""
    vcfg, vp = cfg.variant(name), paths.for_variant(name)
    files = EvalFiles(vp)
    require(vp.metrics, files.ci, vp.per_user, vp.train_history, vp.train_pool_manifest)
    return ConfigResult(
        name=name,
        sampler=vcfg.sampler.active.model_dump(mode="json"),
        model=vcfg.model.name,
        metrics=read_json(vp.metrics),
        ci=read_json(files.ci),
        per_user=pl.read_parquet(vp.per_user),
        history=read_json(vp.train_history),
        manifest=read_json(vp.train_pool_manifest),
    )


def compare(cfg: Config, paths: Paths) -> Comparison:
    """The table, in the order of the choice on validation (issue #12; the test figures report)."""
    from negsamp.sweep.select import choose_for

    results = [load_result(cfg, paths, v) for v in cfg.variants]
    return build(
        results,
        choose_for(cfg, {r.name: r.history for r in results}),
        cfg.registry.metric,
        cfg.registry.greater_is_better,
        cfg.evaluate.plot_k,
        cfg.registry.n_resamples,
        cfg.evaluate.ci_level,
        cfg.base.seed,
    )


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Write the comparison of every configuration; returns the table as a dict."""
    c = compare(cfg, paths)
    out = paths.report_dir
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    title = f"Sweep comparison: {len(c.rows)} configuration(s)"
    write_json(tmp / paths.comparison.name, c.to_dict())
    files = {v: EvalFiles(paths.for_variant(v)) for v in cfg.variants}
    curves = {v: pl.read_csv(f.plot("at_k")) for v, f in files.items() if f.plot("at_k").is_file()}
    bands = {
        v: pl.read_csv(f.plot("by_item_popularity"))
        for v, f in files.items()
        if f.plot("by_item_popularity").is_file()
    }
    pngs = plots.all_plots(c, curves, bands)
    atomic_write(tmp / "comparison.md", render.markdown(c, title, pngs).encode())
    atomic_write(tmp / "comparison.html", render.to_html(c, title, pngs).encode())
    for name, png in pngs.items():
        atomic_write(tmp / name, png)
    # the folder is replaced whole: a crash leaves the old report or the new, never a mix
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    log.info(
        "compared %d configuration(s): %s (%s, test %s=%.4f); wrote %s",
        len(c.rows),
        c.best.config,
        c.choice,
        c.metric,
        c.best.values[c.metric],
        out,
    )
    return c.to_dict()
