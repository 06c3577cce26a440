"""`dvc repro` builds everything from a fresh clone; a second one has nothing to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.conftest import sh

pytestmark = pytest.mark.slow

# README "What you get": the experiments table with only what changed, two metrics a column
EXP_SHOW = ("dvc", "exp", "show", "--no-pager", "--only-changed", "--precision", "4", "--drop",
            "src/|data/(?!metrics/)|data/metrics/.*:(arp|coverage|full_recall|sampled_hr)_")  # fmt: skip


def test_dvc_repro_builds_everything_then_nothing_to_do(project: Path) -> None:
    sh(project, "dvc", "repro")
    metrics = json.loads((project / "data/metrics/default/metrics.json").read_text())
    assert {"sampled_hr_10", "sampled_ndcg_10", "full_recall_10", "full_ndcg_10"} <= metrics.keys()
    reg = json.loads((project / "data/registry/registration.json").read_text())
    assert reg["alias"] == "champion" and reg["version"] == 1
    # `negsamp stage train` under DVC opened the run live; register continued it (issue #15)
    from mlflow import MlflowClient

    from negsamp.mlops import live

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    run = client.get_run(reg["run_id"])
    assert run.data.tags[live.LOGGED_TAG] == "true" and run.data.tags[live.PARAMS_TAG]
    assert len(client.search_runs([run.info.experiment_id])) == 1
    again = sh(project, "dvc", "repro")
    assert "Data and pipelines are up to date" in again.stdout
    shown = sh(project, "dvc", "metrics", "show", "--json").stdout
    assert "sampled_hr_10" in shown
    # same params, same seed: retraining on CPU gives byte-identical metrics
    before = (project / "data/metrics/default/metrics.json").read_bytes()
    sh(project, "dvc", "repro", "--force", "--single-item", "train")
    sh(project, "dvc", "repro", "--force", "--single-item", "evaluate")
    assert (project / "data/metrics/default/metrics.json").read_bytes() == before


@pytest.mark.full  # make test covers `dvc exp run -S` in the 4-configuration test below
def test_dvc_exp_run_set_param_changes_the_pool(project: Path) -> None:
    sh(project, "dvc", "repro")
    first = json.loads((project / "data/pools/default/train_pool.manifest.json").read_text())
    sh(project, "dvc", "exp", "run", "-S", "sampler.n_neg=3")
    second = json.loads((project / "data/pools/default/train_pool.manifest.json").read_text())
    assert first["n_neg"] == 2 and second["n_neg"] == 3
    assert second["content_md5"] != first["content_md5"]


def test_failed_validation_stops_the_pipeline_and_never_registers(tmp_path: Path) -> None:
    from tests.integration.conftest import make_project

    bad = tmp_path / "future.csv"
    rows = [f"{u},{i},5,{2_000_000_000 + u * 10 + i}" for u in range(1, 6) for i in range(1, 5)]
    rows.append("1,9,5,7258118400")  # the year 2200
    bad.write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    project = make_project(tmp_path / "proj", {"data": {"source": "csv", "path": str(bad)}})
    res = sh(project, "dvc", "repro", check=False)
    assert res.returncode != 0
    assert "timestamp" in res.stderr + res.stdout and "2200-01-01" in res.stderr + res.stdout
    assert (project / "data/validation/failed.json").exists()
    assert not (project / "data/validation/result.json").exists()
    assert not (project / "data/split").exists() and not (project / "data/registry").exists()
    assert not (project / "mlflow.db").exists()


def test_each_configuration_gets_its_own_pool_and_only_a_changed_one_reruns(tmp_path: Path) -> None:
    from tests.integration.conftest import make_project

    configs = {
        "default": {},  # the sections as they are: uniform
        "pop": {"sampler": {"name": "popularity", "popularity": {"alpha": 0.75}}},
        "inbatch": {"sampler": {"name": "in_batch"}},  # batch-side: no pool
        "hard": {"sampler": {"name": "hard", "hard": {"candidates": 8, "k": 2}}},
    }
    project = make_project(tmp_path / "proj", {"sweep": {"configs": configs}})
    sh(project, "dvc", "repro")
    expected = {"default": "uniform", "pop": "popularity", "inbatch": "in_batch", "hard": "hard"}
    for name in configs:
        manifest = json.loads((project / f"data/pools/{name}/train_pool.manifest.json").read_text())
        assert manifest["sampler"]["name"] == expected[name]
        assert (
            json.loads((project / f"data/metrics/{name}/metrics.json").read_text())["sampled_hr_10"]
            > 0
        )
    assert (
        json.loads((project / "data/pools/inbatch/train_pool.manifest.json").read_text())["rows"]
        == 0
    )
    reg = json.loads((project / "data/registry/registration.json").read_text())
    assert reg["config"] in configs and set(reg["candidates"]) == set(configs)
    shown = sh(project, "dvc", "metrics", "show").stdout  # issue #15: 352 columns before
    assert max(map(len, shown.splitlines())) <= 200, shown
    assert all(f"data/metrics/{name}/headline.json" in shown for name in configs), shown
    # `dvc plots show`: overlays across configurations, as images; nothing from the network
    sh(project, "dvc", "plots", "show", "-o", "plots-page")
    page = (project / "plots-page" / "index.html").read_text()
    assert "at_k.png" in page and "by_popularity.png" in page
    assert not re.findall(r"(?:src|href)=[\"']https?://", page), re.findall(r"https?://\S+", page)
    sh(project, "git", "add", "-A")  # the baseline experiments are compared with
    sh(project, "git", "commit", "-qm", "a 4-configuration sweep")
    sh(project, "dvc", "exp", "run", "-S", "sweep.configs.pop.sampler.popularity.alpha=0.5")
    out = sh(project, "dvc", "repro", "--dry").stdout  # nothing left after the experiment
    assert "up to date" in out
    # the README's views fit a terminal (issue #15: `dvc exp show` was 842 columns, `dvc dag`
    # about 500)
    wide = {"COLUMNS": "1000"}  # rich would otherwise cut the table to the terminal
    shown = sh(project, *EXP_SHOW, env=wide).stdout
    assert max(map(len, shown.splitlines())) <= 200, shown
    assert "full_ndcg_10" in shown and "sampled_ndcg_10" in shown and "alpha" in shown, shown
    assert "0.75" in shown and "0.5" in shown, shown  # the baseline and the experiment
    dag = sh(project, "dvc", "dag", "evaluate@pop", env=wide).stdout
    assert max(map(len, dag.splitlines())) <= 200 and "train@pop" in dag, dag
    mermaid = sh(project, "dvc", "dag", "--md").stdout
    assert all(f"evaluate@{name}" in mermaid for name in configs), mermaid
    log = sh(
        project, "dvc", "exp", "run", "-S", "sweep.configs.pop.sampler.popularity.alpha=0.25"
    ).stdout
    assert "Running stage 'sample-negatives@pop'" in log
    assert "Running stage 'sample-negatives@default'" not in log
    assert "Running stage 'train@default'" not in log
