"""`negsamp sweep` (issue #6): one MLflow parent run, a child per configuration with its
lineage, the comparison report, the best on validation registered (issue #12); DVC has
nothing left to do after it."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from negsamp import config
from negsamp.mlops import live, recovery
from negsamp.mlops.tracking import read_metrics_table
from tests.integration.conftest import make_project, sh

pytestmark = pytest.mark.slow

CONFIGS = {
    "uniform": {},
    "pop75": {"sampler": {"name": "popularity", "popularity": {"alpha": 0.75}}},
    "inbatch": {"sampler": {"name": "in_batch"}},
}
REPORT = {"comparison.md", "comparison.html", "comparison.json", "by_sampler.png", "n_neg.png",
          "at_k.png", "by_popularity.png",
          "tradeoff.png", "train_time.png"}  # fmt: skip
LINEAGE = {"git_commit", "git_dirty", "raw_md5", "data_md5", "train_md5", "valid_md5", "test_md5",
           "train_pool_md5", "eval_candidates_md5", "prefect_flow_run_id", "reproduce",
           "sampler", "model", "n_neg", "config", "dvc_stage"}  # fmt: skip


@pytest.fixture(scope="module")
def swept(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A 3-configuration sweep run once by the Prefect flow on a fresh project."""
    root = make_project(tmp_path_factory.mktemp("sweep") / "proj")
    config.write_overrides(
        root / "params.yaml", [f"sweep.configs={json.dumps(CONFIGS)}", "sweep.concurrency=3"]
    )
    sh(root, "git", "commit", "-qam", "a sweep of three configurations")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_NO_ANALYTICS", "1")
        from flows.sweep import sweep

        result = sweep(config.load(root / "params.yaml"), root=str(root))
        yield {"root": root, "result": result}


def _runs(root: Path) -> tuple[object, list[object]]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("negsamp")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("negsamp.kind") == "sweep"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], children


def test_sweep_logs_a_parent_and_a_child_per_configuration_and_registers_the_best(
    swept: dict,
) -> None:
    from mlflow import MlflowClient

    root, result = swept["root"], swept["result"]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    parent, children = _runs(root)
    assert sorted(r.info.run_name for r in children) == sorted(CONFIGS)
    everything = client.search_runs([parent.info.experiment_id])
    assert len(everything) == 1 + len(CONFIGS)  # no training run left beside its child
    commit = sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    flow_ids = set()
    kept = {}  # each configuration's validation value at its kept (best) epoch
    for run in children:
        tags, m, name = run.data.tags, run.data.metrics, run.info.run_name
        assert set(tags) >= LINEAGE, LINEAGE - set(tags)
        assert tags["git_commit"] == commit and tags["git_dirty"] == "false"
        assert tags["config"] == name and tags["dvc_stage"] == f"evaluate@{name}"
        assert tags["reproduce"].startswith(f"git checkout {commit} && ")
        assert tags["reproduce"].endswith(f"dvc repro --pull evaluate@{name}")
        assert tags["sampler"] == config.load(root / "params.yaml").variant(name).sampler.name
        assert all(re.fullmatch(r"[0-9a-f]{32}", tags[k]) for k in LINEAGE if k.endswith("_md5"))
        flow_ids.add(tags["prefect_flow_run_id"])
        metrics = json.loads((root / f"data/metrics/{name}/metrics.json").read_text())
        # a short list as metrics (issue #15), every number of metrics.json in one table
        headline = json.loads((root / f"data/metrics/{name}/headline.json").read_text())
        assert {k: m[k] for k in headline} == pytest.approx(headline)
        assert "arp_1" in metrics and "arp_1" not in m and len(m) < 50, sorted(m)
        table = read_metrics_table(client, run.info.run_id)
        assert {k: table[k]["value"] for k in metrics} == pytest.approx(metrics)
        assert table["full_ndcg_10"]["ci_low"] <= metrics["full_ndcg_10"]
        for key in ("sampled_ndcg_10.ci_low", "sampled_ndcg_10.ci_high", "train.seconds",
                    "train.pairs_per_second", "sampler.tail_share_of_negatives"):  # fmt: skip
            assert key in m, key
        # the run is the one the train stage opened live, continued by register
        assert tags[live.PARAMS_TAG] and tags[live.LOGGED_TAG] == "true"
        assert tags[live.WEIGHTS_TAG] == tags["weights_md5"]
        if name != "inbatch":  # batch-side samplers have no pool to time
            assert m["sampler.negatives_per_second"] > 0 and "sampler.rejected_fraction" in m
        epochs = json.loads((root / f"data/models/{name}/history.json").read_text())
        kept[name] = max(h["valid_sampled_ndcg_10"] for h in epochs)  # train.restore_best
        curve = client.get_metric_history(run.info.run_id, "curve/train_loss")
        assert [x.step for x in curve] == [h["epoch"] for h in epochs]
        assert client.get_metric_history(run.info.run_id, "curve/valid_sampled_ndcg_10")
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "metrics")}
        assert "metrics/per_user.parquet" in logged
        assert run.data.params["sampler.name"] == tags["sampler"]
    assert len(flow_ids) == 1 and parent.data.tags["prefect_flow_run_id"] in flow_ids
    # the comparison report: in the parent run and in data/report, every file non-empty
    arts = {a.path: a.file_size for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {f"comparison/{f}" for f in REPORT} == set(arts) and all(arts.values())
    comparison = result["comparison"]
    assert [r["config"] for r in comparison["rows"]][0] == comparison["best"]
    # chosen on validation, ties by name (issue #12); the test metrics only report
    assert comparison["chosen_on"] == "valid" and comparison["monitor"] == "sampled_ndcg_10"
    assert {r["config"]: r["valid"] for r in comparison["rows"]} == pytest.approx(kept)
    assert comparison["best"] == max(sorted(kept), key=kept.__getitem__)
    assert len(comparison["rows"]) == 3 and sum(r["vs_best"] is not None for r in comparison[
        "rows"]) == 2  # fmt: skip
    md = (root / "data/report/comparison.md").read_text()
    assert all(f"| {name} |" in md for name in CONFIGS)
    assert "chosen on validation: sampled_ndcg_10 (valid); test metrics report only" in md
    assert "The registry gate uses `sampled_ndcg_10` (the sampled protocol)" in md  # issue #18
    # the best child is the registered model version, gated like a single run
    reg = result["registration"]
    best = next(r for r in children if r.info.run_name == comparison["best"])
    assert reg["config"] == comparison["best"] and reg["run_id"] == best.info.run_id
    assert reg["parent_run_id"] == parent.info.run_id and reg["alias"] == "champion"
    mv = client.get_model_version_by_alias("negsamp", "champion")
    assert mv.run_id == best.info.run_id and mv.tags["config"] == comparison["best"]
    assert parent.data.tags["best_config"] == comparison["best"]
    assert len(client.search_model_versions("name='negsamp'")) == 1
    # DVC recorded what the flow produced: nothing left to do, same metric names
    assert "Data and pipelines are up to date" in sh(root, "dvc", "repro").stdout
    shown = json.loads(sh(root, "dvc", "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    for name in CONFIGS:  # the headline (issue #15), under MLflow's names
        dvc_metrics = files[f"data/metrics/{name}/headline.json"]["data"]
        assert set(dvc_metrics) <= set(best.data.metrics) and "sampled_ndcg_10" in dvc_metrics


# make test keeps a lineage rebuild (test_retraining.py: a retrained champion by dvc repro);
# this one (a sweep child, 41 s) is in make test-full
@pytest.mark.full
def test_a_sweep_child_is_rebuilt_from_its_lineage_tags(swept: dict, tmp_path: Path) -> None:
    """Check out the child's git_commit in a clone, `dvc repro` its stage: the same metrics."""
    from negsamp.io import md5_file
    from tests.integration.lineage import reproduce

    root = swept["root"]
    _, children = _runs(root)
    child = next(r for r in children if r.info.run_name == "pop75")
    tags = child.data.tags
    assert tags["reproduce"] == f"git checkout {tags['git_commit']} && dvc repro --pull " + tags[
        "dvc_stage"]  # fmt: skip
    clone = reproduce(root, tags["git_commit"], tags["dvc_stage"], tmp_path / "clone")
    got = json.loads((clone / "data/metrics/pop75/metrics.json").read_text())
    for key in ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10", "full_ndcg_10", "arp_10"):
        assert got[key] == child.data.metrics[key], key  # CPU: exactly the same
    assert md5_file(clone / "data/pools/pop75/train_pool.parquet") == tags["train_pool_md5"]
    assert md5_file(clone / "data/split/test.parquet") == tags["test_md5"]
    assert md5_file(clone / "data/pools/eval_candidates.parquet") == tags["eval_candidates_md5"]


def test_the_mlflow_ui_shows_the_sweep_run_with_its_children(swept: dict) -> None:
    """A headless Chromium opens the experiment on a real server on 127.0.0.1; the
    screenshot is kept in test-artifacts/ (or $NEGSAMP_TEST_ARTIFACTS)."""
    from tests.integration.browser import (
        artifacts_dir,
        chromium_paths,
        html_artifact_images,
        mlflow_server,
        screenshot_runs,
    )

    chromium_paths()  # skips when no browser is installed
    root = swept["root"]
    parent, children = _runs(root)
    names = [parent.info.run_name, *sorted(r.info.run_name for r in children)]
    png = artifacts_dir() / "mlflow-ui-sweep.png"
    report = artifacts_dir() / "mlflow-ui-sweep-comparison.png"
    with mlflow_server(f"sqlite:///{root / 'mlflow.db'}", root / "mlruns") as url:
        text = screenshot_runs(url, parent.info.experiment_id, names, png)
        # the comparison report inside MLflow's artifact viewer: every image drawn (issue #15)
        images = html_artifact_images(
            url, parent.info.experiment_id, parent.info.run_id, "comparison/comparison.html", report
        )
    print(f"screenshots: {png} {report}")
    assert len(images) >= 4 and all(w > 0 for _, w in images), images
    assert all(src.startswith("data:image/png;base64,") for src, _ in images), images
    assert f"{len(names)} matching runs" in text, text
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    assert struct.unpack(">II", head[16:24]) == (1600, 1000)


def test_negsamp_sweep_grid_leaves_params_alone_unless_kept_and_prints_the_table(
    tmp_path: Path,
) -> None:
    """Issue #15: a --grid rewrote sweep.configs for good, so a later `negsamp run` trained
    the grid again; now it runs without touching params.yaml, and --keep writes it."""
    import sys

    root = make_project(tmp_path / "proj")
    negsamp = str(Path(sys.executable).with_name("negsamp"))
    before = (root / "params.yaml").read_bytes()
    uri = f"sqlite:///{root / 'mlflow.db'}"  # the module's fixture may have set another
    res = sh(
        root, negsamp, "sweep", "--grid", "sampler.n_neg=1,3", env={"MLFLOW_TRACKING_URI": uri}
    )
    names = ["default-n_neg1", "default-n_neg3"]
    assert (
        root / "params.yaml"
    ).read_bytes() == before and "params.yaml was not changed" in res.stdout
    assert sh(root, "git", "status", "--porcelain", "-uno").stdout == ""  # runs are not dirty
    assert all(name in res.stdout for name in names)
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("negsamp").experiment_id
    runs = client.search_runs([exp], "tags.config = 'default-n_neg3'")
    assert runs and '--set \'sweep.configs={"default-n_neg3":' in runs[0].data.tags["reproduce"]
    assert runs[0].data.tags["git_dirty"] == "false"

    res = sh(root, negsamp, "sweep", "--grid", "sampler.n_neg=1,3", "--keep", "--concurrency", "2",
             env={"MLFLOW_TRACKING_URI": uri})  # fmt: skip
    assert "params.yaml updated: sweep.configs=" in res.stdout
    assert list(config.load(root / "params.yaml").sweep.configs) == names
    assert all(name in res.stdout for name in names)
    assert "chosen on validation: sampled_ndcg_10 (valid)" in res.stdout
    for name, n in zip(names, (1, 3), strict=True):
        manifest = json.loads((root / f"data/pools/{name}/train_pool.manifest.json").read_text())
        assert manifest["n_neg"] == n
    assert (root / "data/report/n_neg.png").stat().st_size > 0
    assert "Data and pipelines are up to date" in sh(root, "dvc", "repro").stdout
    bad = sh(root, negsamp, "sweep", "--grid", "base.seed=1,2", check=False)
    assert bad.returncode == 1 and "grid key must be in sampler, model, train" in bad.stderr


@pytest.fixture(scope="module")
def swept_on_ray(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The same sweep with ``base.engine: ray``: each configuration's chain runs as Ray tasks
    (prefect_ray's RayTaskRunner) on a local 2-CPU instance, shut down after (issue #16)."""
    from flows.engine import bind
    from tests.integration.ray_instance import SMALL_RAY, local_ray

    root = make_project(tmp_path_factory.mktemp("sweep-ray") / "proj", SMALL_RAY)
    config.write_overrides(
        root / "params.yaml",
        [f"sweep.configs={json.dumps(CONFIGS)}", "sweep.concurrency=3", "base.engine=ray"],
    )
    sh(root, "git", "commit", "-qam", "the same sweep on Ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        # set before Ray starts: the workers get the driver's MLFLOW_* at connection time
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_NO_ANALYTICS", "1")
        from flows.sweep import sweep

        with local_ray():
            cfg = config.load(root / "params.yaml")
            result = bind(sweep, cfg)(cfg, root=str(root))
    yield {"root": root, "result": result}


# tags that name where or when a run ran, not what it is
VARYING = {recovery.PID_TAG, live.TRAINED_IN_TAG, "mlflow.source.name", "mlflow.runName", "mlflow.parentRunId", "prefect_flow_run_id",
           "git_commit", "reproduce", "negsamp.engine", "negsamp.ray_address", "negsamp.ray_nodes",
           "negsamp.ray_cpus", "negsamp.ray_gpus", "mlflow.log-model.history",
           "negsamp.live_run"}  # fmt: skip


def _same_setup(params: dict) -> dict:
    """Params less the engine's (base.engine and the ray section)."""
    return {k: v for k, v in params.items() if k != "base.engine" and not k.startswith("ray.")}


def _results(metrics: dict) -> dict:
    """Metrics less timings and system metrics (what a run measured, not how fast)."""
    timing = ("system/", "seconds", "per_second")
    return {k: v for k, v in metrics.items() if not any(t in k for t in timing)}


def test_a_sweep_on_ray_logs_what_the_threaded_sweep_logs(swept: dict, swept_on_ray: dict) -> None:
    """Same parent/child structure, params, metrics (CPU: same numbers), tags and registered
    model as the threaded sweep; the children's training ran in Ray worker processes."""
    p_threads, c_threads = _runs(swept["root"])
    p_ray, c_ray = _runs(swept_on_ray["root"])
    assert p_ray.data.tags["negsamp.engine"] == "ray"
    assert float(p_ray.data.tags["negsamp.ray_cpus"]) == 2.0
    assert p_threads.data.tags["negsamp.engine"] == "local"
    assert _same_setup(p_ray.data.params) == _same_setup(p_threads.data.params)
    threads = {r.info.run_name: r for r in c_threads}
    ray_runs = {r.info.run_name: r for r in c_ray}
    assert sorted(ray_runs) == sorted(threads) == sorted(CONFIGS)
    for name, run in ray_runs.items():
        ref = threads[name]
        assert _results(run.data.metrics) == _results(ref.data.metrics), name
        assert run.data.params["base.engine"] == "ray"
        assert _same_setup(run.data.params) == _same_setup(ref.data.params), name
        assert set(run.data.tags) - VARYING == set(ref.data.tags) - VARYING, name
        for k in set(ref.data.tags) - VARYING:
            if k.endswith("_md5") or k in ("sampler", "model", "n_neg", "config"):
                assert run.data.tags[k] == ref.data.tags[k], (name, k)
        # the train stage opened this run in a Ray worker, not in the flow's process
        assert run.data.tags[live.TRAINED_IN_TAG].startswith("ray worker on node "), name
        assert ref.data.tags[live.TRAINED_IN_TAG] == "this process", name
    assert (
        swept_on_ray["result"]["registration"]["config"]
        == swept["result"]["registration"]["config"]
    )
