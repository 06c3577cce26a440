"""Issue #16, points 2 and 3: ``base.engine: ray`` shards sampling, candidates, full-ranking
evaluation and batch recommendations by user range, with the local run's bytes and metrics.

One small synthetic project runs every stage up to evaluate (and recommend, from a written
registration) with the local engine; then candidates, sample-negatives (uniform and
popularity), evaluate and recommend run again through the real stages with
``base.engine=ray`` and ``ray.shards=4`` on a local Ray instance (2 CPUs, 150 MiB object
store, 127.0.0.1) that the module starts once and shuts down, leaving no process behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from negsamp import config, engine
from negsamp.io import md5_file, read_json, write_json
from negsamp.paths import Paths
from negsamp.stages import run_stage
from tests.integration.ray_instance import local_ray

pytestmark = pytest.mark.slow

CONFIGS = {"default": {}, "pop": {"sampler": {"name": "popularity"}}}
SMALL = [
    # 1100 users: five USER_BLOCKs, so four shards each hold whole blocks
    "data.synthetic.n_users=1100",
    "data.synthetic.n_items=200",
    "data.synthetic.n_interactions=15000",
    "sampler.n_neg=3",
    "sampler.pool_epochs=2",
    "model.bpr.factors=8",
    "train.epochs=2",
    "train.batch_size=2048",
    "evaluate.n_eval_neg=49",
    "evaluate.batch_size=100",  # ~1000 test users: ten batches over four tasks
    "evaluate.bootstrap=20",
    "recommend.batch_size=128",
    f"sweep.configs={json.dumps(CONFIGS)}",
]
RAY = [
    "base.engine=ray",
    "ray.shards=4",
    "ray.num_cpus=2",
    "ray.object_store_mb=150",
    "ray.cpus_per_task=1",
]
PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


@pytest.fixture(scope="module")
def ray_cfg() -> Iterator[config.Config]:
    """The configuration with base.engine=ray, its local Ray instance started once; at the
    end the instance is shut down and none of its processes is left (ray_instance.py)."""
    cfg = config.load(PARAMS, [*SMALL, *RAY])
    with local_ray(cfg.ray.num_cpus, cfg.ray.object_store_mb):
        try:
            yield cfg
        finally:
            engine.activate(config.load(PARAMS, SMALL))  # later tests of this process: local


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, dict[str, str]]:
    """A project run locally up to evaluate and recommend; the bytes of what Ray redoes."""
    paths = Paths(tmp_path_factory.mktemp("ray_engine"))
    cfg = config.load(PARAMS, SMALL)
    with pytest.MonkeyPatch.context() as mp:  # whatever the trainer tracks stays in tmp
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{paths.root / 'mlflow.db'}")
        for stage in ("synthesize", "ingest", "validate", "split", "candidates"):
            run_stage(stage, cfg, paths)
        for v in CONFIGS:
            run_stage("sample-negatives", cfg, paths, v)
        run_stage("train", cfg, paths, "default")
        run_stage("evaluate", cfg, paths, "default")
    # what the register stage writes for a promoted configuration (no MLflow needed here)
    write_json(paths.registration, {"config": "default", "model_name": "negsamp", "version": 1})
    run_stage("recommend", cfg, paths)
    return paths, _outputs(paths)


def _outputs(paths: Paths) -> dict[str, str]:
    """md5 of each file the Ray engine writes again: candidates, pools, metrics.json,
    per_user.parquet, recommendations."""
    files = [paths.eval_candidates, paths.recommendations]
    files += [paths.for_variant(v).train_pool for v in CONFIGS]
    d = paths.for_variant("default")
    files += [d.metrics, d.per_user]
    return {str(f.relative_to(paths.root)): md5_file(f) for f in files}


def test_ray_shards_give_the_local_bytes_and_metrics(
    local_run: tuple[Paths, dict[str, str]], ray_cfg: config.Config
) -> None:
    paths, local = local_run
    local_manifests = {v: read_json(paths.for_variant(v).train_pool_manifest) for v in CONFIGS}
    local_cands = read_json(paths.eval_candidates_manifest)

    run_stage("candidates", ray_cfg, paths)
    for v in CONFIGS:
        run_stage("sample-negatives", ray_cfg, paths, v)
    run_stage("evaluate", ray_cfg, paths, "default")
    run_stage("recommend", ray_cfg, paths)

    for v in CONFIGS:  # the pool: the same bytes and content_md5, the same sampler counts
        before, after = local_manifests[v], read_json(paths.for_variant(v).train_pool_manifest)
        assert (
            after["content_md5"]
            == before["content_md5"]
            == md5_file(paths.for_variant(v).train_pool)
        )
        assert before["engine"] == {"engine": "local", "shards": 1}
        assert after["engine"]["engine"] == "ray" and after["engine"]["shards"] == 4
        assert after["engine"]["ray_cpus"] == 2.0
        for key in ("draws", "rejected_fraction", "sampler_statistics", "statistics", "rows"):
            assert after[key] == before[key], (v, key)
    cands = read_json(paths.eval_candidates_manifest)
    assert cands["content_md5"] == local_cands["content_md5"]
    assert cands["engine"]["shards"] == 4
    assert read_json(paths.recommendations_manifest)["engine"]["shards"] == 4
    assert _outputs(paths) == local  # the same bytes, file by file
