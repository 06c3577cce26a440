"""negsamp.mlops: input checks, and a real sqlite MLflow round trip through the register stage
(versions, aliases, a failure that leaves the registry alone, serving, rollback)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from negsamp.config import Config
from negsamp.interactions import Interactions
from negsamp.io import md5_file, read_json, write_json
from negsamp.mlops.errors import RegistrationError
from negsamp.mlops.inputs import check_inputs
from negsamp.mlops.uri import tracking_uri
from negsamp.models import load_model
from negsamp.paths import Paths
from tests.unit.mlops import world

METRIC = "sampled_ndcg_10"


def test_tracking_uri_defaults_to_sqlite_under_root(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5000"


def test_missing_inputs_raise_before_mlflow(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    paths = Paths(root=tmp_path)
    with pytest.raises(RegistrationError, match="missing inputs: model config"):
        check_inputs(Config(), paths)
    world.build(tmp_path, world.config())
    paths.split_report.unlink()
    with pytest.raises(RegistrationError, match=r"split report .*split\.json"):
        check_inputs(Config(), paths)
    write_json(paths.split_report, {})
    write_json(paths.metrics, {METRIC: float("nan")})
    with pytest.raises(RegistrationError, match="not a finite number"):
        check_inputs(Config(), paths)
    assert not (tmp_path / "mlflow.db").exists()


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.slow
def test_register_gate_and_serve(tmp_path, monkeypatch, store) -> None:
    import mlflow

    from negsamp.stages import register

    uri, client = f"sqlite:///{tmp_path}/mlflow.db", store
    cfg = world.config()
    paths = world.build(tmp_path, cfg, seed=0)

    def aliases() -> dict[str, int]:
        return {a: int(v) for a, v in client.get_registered_model("negsamp").aliases.items()}

    first = register.run(cfg, paths, extra_tags={"trigger": "test"})
    assert (first["version"], first["alias"], first["promoted"]) == (1, "champion", True)
    assert first["champion_value_before"] is None and first["reason"] == "no champion yet"
    assert json.loads(paths.registration.read_text())["run_id"] == first["run_id"]
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics[METRIC] == pytest.approx(read_json(paths.metrics)[METRIC])
    assert run.data.metrics["n_test_users"] == world.N_USERS
    assert [m.step for m in client.get_metric_history(first["run_id"], "curve/train_loss")] == [
        1,
        2,
    ]
    assert run.data.params["model.bpr.factors"] == "4" and run.data.params["evaluate.ks"]
    tags = run.data.tags
    assert tags["sampler"] == "uniform" and tags["n_neg"] == "4" and tags["trigger"] == "test"
    assert tags["git_dirty"] in ("true", "false", "unknown") and len(tags["data_md5"]) == 32
    assert {"train_md5", "test_md5", "train_pool_md5", "eval_candidates_md5"} <= set(tags)
    logged = {a.path for a in client.list_artifacts(first["run_id"], "metrics")}
    assert {"metrics/metrics.json", "metrics/per_user.parquet"} <= logged
    assert (tmp_path / "mlruns").is_dir()
    champ = world.per_user(paths, METRIC)  # v1 on the current split: what the gate recomputes
    mean = float(champ[METRIC].mean())

    world.train_model(paths, cfg, seed=10)  # worse: challenger, champion stays
    world.set_challenger(paths, METRIC, champ.with_columns(pl.col(METRIC) * 0.5), mean * 0.5)
    worse = register.run(cfg, paths)
    assert (worse["version"], worse["alias"], worse["promoted"]) == (2, "challenger", False)
    assert worse["champion_value_before"] == pytest.approx(mean)  # re-evaluated, not logged
    assert worse["gate"]["champion"] == pytest.approx(mean) and worse["gate"]["p_value"] < 0.05
    assert aliases() == {"champion": 1, "challenger": 2}
    mv = client.get_model_version("negsamp", "2")
    assert mv.tags["decision"] == "challenger" and "is not better" in mv.tags["reason"]
    assert "current test split" in mv.tags["reason"] and "gate_p_value" in mv.tags

    world.train_model(paths, cfg, seed=20)  # a tie is not better
    world.set_challenger(paths, METRIC, champ, mean)
    assert register.run(cfg, paths)["alias"] == "challenger"

    world.train_model(paths, cfg, seed=30)  # better: champion moves
    world.set_challenger(paths, METRIC, champ.with_columns(pl.col(METRIC) + 0.2), mean + 0.2)
    better = register.run(cfg, paths)
    assert (better["version"], better["alias"], better["promoted"]) == (4, "champion", True)
    assert better["gate"]["diff"] == pytest.approx(0.2)
    assert aliases() == {"champion": 4, "previous_champion": 1, "challenger": 3}

    good = read_json(paths.metrics)
    write_json(paths.metrics, {"sampled_hr_10": 0.9})  # the gate metric is missing
    with pytest.raises(RegistrationError, match=METRIC):
        register.run(cfg, paths)
    n_runs = len(client.search_runs([run.info.experiment_id]))
    assert n_runs == 4 and len(client.search_model_versions("name='negsamp'")) == 4

    write_json(paths.metrics, good | {METRIC: 0.99})  # failure after the run started
    monkeypatch.setattr(mlflow, "register_model", _boom)
    with pytest.raises(RuntimeError, match="boom"):
        register.run(cfg, paths)
    monkeypatch.undo()
    failed = client.search_runs([run.info.experiment_id], "attributes.status = 'FAILED'")
    assert len(failed) == 1 and len(client.search_model_versions("name='negsamp'")) == 4
    assert aliases()["champion"] == 4

    # Serve the champion: original ids in and out, seen items never recommended.
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model("models:/negsamp@champion")
    k, unknown = 3, 424242
    users = [world.RAW_USERS[0], world.RAW_USERS[3], unknown, world.RAW_USERS[5]]
    out = served.predict(pd.DataFrame({"user": users}), params={"k": k})
    assert list(out.columns) == ["user", "rank", "item", "score", "known_user", "source"]
    assert out.groupby("user").size().to_dict() == dict.fromkeys(users, k)
    assert out["user"].tolist() == [u for u in users for _ in range(k)]  # input order kept
    assert out["rank"].tolist() == [1, 2, 3] * len(users)
    log_ = pl.read_parquet(paths.interactions)  # the whole log is masked (issue #13)
    seen = {(world.RAW_USERS[u], world.RAW_ITEMS[i]) for u, i in log_.select("user", "item").rows()}
    assert not any((u, i) in seen for u, i in zip(out["user"], out["item"], strict=True))
    model = load_model(paths.refit_model)  # the seed-30 configuration's refit is the champion
    pos = Interactions.from_frame(log_, world.N_USERS, world.N_ITEMS)
    want, _ = model.recommend(np.array([0, 3, 5]), k, exclude=pos)
    known = out[out["known_user"]]
    assert known["item"].tolist() == [world.RAW_ITEMS[j] for j in want.ravel()]
    cold = out[out["user"] == unknown]
    assert not cold["known_user"].any()
    counts = pos.item_counts()
    top = np.argsort(-counts, kind="stable")[:k]
    assert cold["item"].tolist() == [world.RAW_ITEMS[j] for j in top]  # most popular in the log
    assert cold["score"].isna().all() and (cold["source"] == "popularity").all()
    assert len(served.predict(pd.DataFrame({"user": [unknown]}))) == 10  # k=10 by default

    from negsamp.mlops.registry import rollback, versions

    back = rollback("negsamp", uri)  # v1 is champion again, v4 previous: one more undoes it
    assert (back["champion"], back["previous_champion"]) == (1, 4)
    assert aliases() == {"champion": 1, "previous_champion": 4, "challenger": 3}
    assert rollback("negsamp", uri)["champion"] == 4
    assert [v["version"] for v in versions("negsamp", uri)] == [4, 3, 2, 1]


@pytest.mark.slow
def test_a_sweep_registers_its_best_child_and_a_failure_leaves_the_registry_alone(
    tmp_path, monkeypatch
) -> None:
    import mlflow
    from mlflow import MlflowClient

    from negsamp.config import SweepCfg, VariantCfg
    from negsamp.stages import register, report

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    paths = Paths(root=tmp_path)
    sweep = SweepCfg(configs={"a": VariantCfg(), "b": VariantCfg()})
    cfg = world.config(sweep)
    world.build(tmp_path, world.config())  # data, splits, candidates (shared)
    for name, value in (("a", 0.2), ("b", 0.4)):
        vpaths = paths.for_variant(name)
        for f in (vpaths.train_pool, vpaths.train_pool_manifest):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(paths.train_pool.parent.joinpath(f.name).read_bytes())
        world.train_model(vpaths, cfg, seed=int(value * 10))
        world.set_challenger(vpaths, METRIC, None, value)
    with pytest.raises(RegistrationError, match="comparison.json is missing"):
        register.run(cfg, paths)
    assert not (tmp_path / "mlflow.db").exists()  # refused before MLflow was touched

    assert report.run(cfg, paths)["best"] == "b"
    monkeypatch.setattr(mlflow, "register_model", _boom)
    with pytest.raises(RuntimeError, match="boom"):
        register.run(cfg, paths)
    monkeypatch.undo()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("negsamp").experiment_id
    # MLflow 3's UI opens it on its runs, not on the GenAI view (issue #15)
    kind = client.get_experiment(exp).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"
    statuses = {r.info.run_name: r.info.status for r in client.search_runs([exp])}
    b_run = next(r for r in client.search_runs([exp]) if r.info.run_name == "b")
    logged = {d.dataset.name: d for d in b_run.inputs.dataset_inputs}  # the Datasets panel
    assert {"interactions", "train", "train_pool", "valid", "test"} <= set(logged)
    assert logged["train"].dataset.digest == md5_file(paths.train)
    assert logged["test"].tags[0].value == "evaluation"
    parent = next(n for n in statuses if n.startswith("sweep-2x-"))
    assert statuses[parent] == "FAILED" and statuses["b"] == "FAILED"
    assert client.search_model_versions("name='negsamp'") == []

    rec = register.run(cfg, paths)
    assert (rec["config"], rec["version"], rec["alias"]) == ("b", 1, "champion")
    runs = client.search_runs([exp], "attributes.status = 'FINISHED'")
    children = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == rec["parent_run_id"]
    }
    assert set(children) == {"a", "b"} and rec["run_id"] == children["b"].info.run_id
    parent_run = client.get_run(rec["parent_run_id"])
    assert parent_run.data.tags["best_config"] == "b"
    assert parent_run.data.metrics["best.sampled_ndcg_10"] == pytest.approx(0.4)
    assert children["a"].data.metrics["train.seconds"] == pytest.approx(0.2)
    assert [m.value for m in client.get_metric_history(rec["run_id"], "curve/train_pairs_per_second")] \
        == [1e5, 1e5]  # fmt: skip
