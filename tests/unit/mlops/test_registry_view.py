"""Issue #13, point 5: the registry view a user reads, and no version for a model that is the
champion again. Real sqlite MLflow store (the ``store`` fixture), the tiny project of world.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from negsamp.io import read_json
from tests.unit.mlops import world

METRIC = "sampled_ndcg_10"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def _git_repo(root: Path) -> None:
    """A clean git repo at ``root`` (data files untracked, as DVC keeps them)."""
    (root / "code.py").write_text("x = 1\n")
    (root / "params.yaml").write_text("registry:\n  n_resamples: 200\n")
    for cmd in (["init", "-q"], ["add", "code.py", "params.yaml"], ["commit", "-qm", "code"]):
        subprocess.run(GIT + cmd, cwd=root, check=True)


@pytest.mark.slow
def test_show_lists_aliases_ci_data_and_the_gate_reason_and_sets_the_description(
    tmp_path, store
) -> None:
    from negsamp.mlops.listing import _from_client, versions
    from negsamp.stages import register

    uri, client = f"sqlite:///{tmp_path}/mlflow.db", store
    cfg = world.config()
    paths = world.build(tmp_path, cfg, seed=0)
    champ = world.per_user(paths, METRIC)
    mean = float(champ[METRIC].mean())
    register.run(cfg, paths)  # v1 champion
    world.train_model(paths, cfg, seed=10)  # v2 better: champion, v1 previous
    world.set_challenger(paths, METRIC, champ.with_columns(pl.col(METRIC) + 0.2), mean + 0.2)
    register.run(cfg, paths)
    world.train_model(paths, cfg, seed=20)  # v3 worse: challenger
    world.set_challenger(paths, METRIC, champ.with_columns(pl.col(METRIC) * 0.5), mean * 0.5)
    register.run(cfg, paths)

    shown = versions("negsamp", uri)  # sqlite read directly: the same as MLflow's client
    assert shown == _from_client("negsamp", uri)
    assert [(v["version"], v["aliases"]) for v in shown] == [
        (3, ["challenger"]),
        (2, ["champion"]),
        (1, ["previous_champion"]),
    ]
    v3 = shown[0]
    assert v3["metric"] == METRIC and v3["metric_value"] == pytest.approx(mean * 0.5)
    assert v3["ci_low"] is not None and v3["ci_high"] is not None
    assert v3["data_snapshot"] == "0" and len(v3["data_md5"]) == 32
    assert v3["refit"] == "no" and v3["created"] > 0
    assert "is not better" in v3["reason"] and v3["decision"] == "challenger"
    assert shown[2]["reason"] == "no champion yet"

    for v in shown:  # the decision is what the MLflow UI shows first
        desc = client.get_model_version("negsamp", str(v["version"])).description
        assert desc.startswith(f"gate: {v['decision']} ({METRIC} = ") and v["reason"] in desc

    client.set_model_version_tag("negsamp", "3", "refit", "yes")  # read, never invented
    assert versions("negsamp", uri)[0]["refit"] == "yes"

    # the command a user runs, as a fresh process (imports included)
    (tmp_path / "params.yaml").write_text("registry:\n  model_name: negsamp\n")
    env = os.environ | {"MLFLOW_TRACKING_URI": uri, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "negsamp", "registry", "show", "--params", "params.yaml"]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    print(f"negsamp registry show, 3 versions: {seconds:.2f} s")  # reported, not asserted
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = {line.split()[1]: line for line in out.splitlines() if line[2:4] in ("v1", "v2", "v3")}
    assert "previous_champion" in lines["v1"] and "champion" in lines["v2"]
    assert "challenger" in lines["v3"] and "is not better" in lines["v3"] and "yes" in lines["v3"]
    low, high = v3["ci_low"], v3["ci_high"]
    assert f"{mean * 0.5:.4f} [{low:.4f}, {high:.4f}]" in lines["v3"]
    assert f"snapshot 0 {v3['data_md5'][:8]}" in lines["v3"]
    assert "no champion yet" in lines["v1"] and METRIC in out


@pytest.mark.slow
def test_a_challenger_identical_to_the_champion_is_not_registered_again(tmp_path, store) -> None:
    """Issue #13: nine identical versions in one afternoon."""
    from negsamp.stages import register

    client = store
    _git_repo(tmp_path)
    cfg = world.config()
    paths = world.build(tmp_path, cfg, seed=0)
    first = register.run(cfg, paths)
    fp = client.get_model_version("negsamp", "1").tags["fingerprint"]
    assert len(fp) == 64 and client.get_run(first["run_id"]).data.tags["fingerprint"] == fp
    exp = client.get_experiment_by_name("negsamp").experiment_id

    def n_versions() -> int:
        return len(client.search_model_versions("name='negsamp'"))

    # the same data, code and configuration; a setting that is not the model's changes nothing,
    # nor does params.yaml left modified (its content is in the fingerprint: the configuration)
    (tmp_path / "params.yaml").write_text("registry:\n  n_resamples: 300\n")
    again = register.run(world.config(n_resamples=300), paths)
    assert again["registered"] is False and again["version"] == 1
    assert again["reason"] == "identical to champion v1: not registered again"
    assert read_json(paths.registration)["reason"] == again["reason"]
    assert n_versions() == 1 and len(client.search_runs([exp])) == 1  # nothing logged
    assert dict(client.get_registered_model("negsamp").aliases) == {"champion": 1}

    changed = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 7})})
    new = register.run(changed, paths)  # a changed parameter: a new version
    assert new["registered"] is True and new["version"] == 2 and n_versions() == 2

    (tmp_path / "code.py").write_text("x = 2\n")  # uncommitted code: never "identical"
    dirty = register.run(changed, paths)
    assert (
        dirty["version"] == 3 and "fingerprint" not in client.get_model_version("negsamp", "3").tags
    )
