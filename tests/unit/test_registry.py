"""negsamp.registry: the promotion rule, input checks, and a real sqlite MLflow round trip."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from negsamp.config import BPRCfg, Config, RegistryCfg
from negsamp.io import write_json, write_parquet
from negsamp.models import build_model, load_model, save_model
from negsamp.paths import Paths
from negsamp.registry import RegistrationError, check_inputs, decide, tracking_uri

N_USERS, N_ITEMS = 6, 8
RAW_USERS = [1000 + 7 * u for u in range(N_USERS)]  # original ids: not the dense codes
RAW_ITEMS = [f"i{j:02d}" for j in range(N_ITEMS)]
# Training positives: item 0 is in 4 users' history, item 1 in 3, item 2 in 2, the rest 0-1.
TRAIN = [(0, 0), (0, 1), (1, 0), (1, 2), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2), (4, 3), (5, 4)]


# --------------------------------------------------------------------------- decide


@pytest.mark.parametrize(
    ("candidate", "champion", "gib", "expected"),
    [
        (0.1, None, True, True),  # no champion: always promote
        (0.1, None, False, True),
        (0.5, 0.5, True, False),  # a tie keeps the champion
        (0.5, 0.5, False, False),
        (0.6, 0.5, True, True),
        (0.4, 0.5, True, False),
        (0.4, 0.5, False, True),  # lower is better (e.g. a loss)
        (0.6, 0.5, False, False),
        (0.5 + 1e-12, 0.5, True, True),  # strictly better by any margin
    ],
)
def test_decide(candidate: float, champion: float | None, gib: bool, expected: bool) -> None:
    assert decide(candidate, champion, gib) is expected


def test_tracking_uri_defaults_to_sqlite_under_root(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5000"


# --------------------------------------------------------------------------- fixtures


def make_artifacts(paths: Paths, metric: float, seed: int = 0, valid: float | None = None) -> None:
    """Tiny but real versions of everything train/evaluate leave for register; ``metric`` is
    the test value, ``valid`` the validation value at the kept epoch (default: ``metric``)."""
    model = build_model(BPRCfg(factors=4), N_USERS, N_ITEMS, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.item.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 1))
        model.user.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 2))
    save_model(model, paths.model_dir)
    dense = pl.Int32
    write_parquet(
        paths.user_ids,
        pl.DataFrame({"user": pl.Series(range(N_USERS), dtype=dense), "original": RAW_USERS}),
    )
    write_parquet(
        paths.item_ids,
        pl.DataFrame({"item": pl.Series(range(N_ITEMS), dtype=dense), "original": RAW_ITEMS}),
    )
    u, i = zip(*TRAIN, strict=True)
    train = pl.DataFrame(
        {"user": u, "item": i, "count": [1] * len(u), "timestamp": range(len(u))},
        schema_overrides={"user": dense, "item": dense},
    )
    write_parquet(paths.train, train)
    write_parquet(paths.interactions, train)
    write_parquet(paths.test, train.head(N_USERS))
    write_parquet(paths.train_pool, pl.DataFrame({"user": [0], "neg": [5]}))
    write_parquet(paths.eval_candidates, pl.DataFrame({"user": [0], "item": [6]}))
    write_parquet(paths.per_user, pl.DataFrame({"user": range(N_USERS), "ndcg_10": [metric] * 6}))
    write_json(paths.metrics, {"sampled_ndcg_10": metric, "full_recall_10": 0.1, "n_test_users": 6})
    write_json(
        paths.train_history,
        [
            {
                "epoch": e,
                "loss": 0.7 - 0.1 * e,
                "seconds": 0.1,
                "pairs_per_second": 1e5,
                "valid_sampled_ndcg_10": (metric if valid is None else valid) - 0.1 * (2 - e),
            }
            for e in (1, 2)
        ],
    )
    write_json(paths.train_pool_manifest, {"sampler": "uniform", "rows": 1})
    write_json(paths.eval_candidates_manifest, {"n_eval_neg": 99})
    write_json(paths.split_report, {"method": "leave_one_out"})


def test_missing_inputs_raise_before_mlflow(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    paths = Paths(root=tmp_path)
    with pytest.raises(RegistrationError, match="missing inputs: model config"):
        check_inputs(Config(), paths)
    make_artifacts(paths, 0.3)
    paths.split_report.unlink()
    with pytest.raises(RegistrationError, match=r"split report .*split\.json"):
        check_inputs(Config(), paths)
    write_json(paths.split_report, {})
    write_json(paths.metrics, {"sampled_ndcg_10": float("nan")})
    with pytest.raises(RegistrationError, match="not a finite number"):
        check_inputs(Config(), paths)
    assert not (tmp_path / "mlflow.db").exists()


# --------------------------------------------------------------------------- MLflow round trip


@pytest.mark.slow
def test_register_gate_and_serve(tmp_path, monkeypatch) -> None:
    import mlflow
    from mlflow import MlflowClient

    from negsamp.stages import register

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    paths = Paths(root=tmp_path)
    cfg = Config(model=BPRCfg(factors=4), registry=RegistryCfg(model_name="negsamp"))
    client = MlflowClient(uri)

    def aliases() -> dict[str, int]:
        return {a: int(v) for a, v in client.get_registered_model("negsamp").aliases.items()}

    make_artifacts(paths, 0.30, seed=0)
    first = register.run(cfg, paths, extra_tags={"trigger": "test"})
    assert (first["version"], first["alias"], first["promoted"]) == (1, "champion", True)
    assert first["champion_value_before"] is None and first["reason"] == "no champion yet"
    assert json.loads(paths.registration.read_text())["run_id"] == first["run_id"]
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["sampled_ndcg_10"] == pytest.approx(0.30)
    assert run.data.metrics["n_test_users"] == 6
    assert [m.step for m in client.get_metric_history(first["run_id"], "train_loss")] == [1, 2]
    assert run.data.params["model.bpr.factors"] == "4" and run.data.params["evaluate.ks"]
    tags = run.data.tags
    assert tags["sampler"] == "uniform" and tags["n_neg"] == "4" and tags["trigger"] == "test"
    assert tags["git_dirty"] in ("true", "false", "unknown") and len(tags["data_md5"]) == 32
    assert {"train_md5", "test_md5", "train_pool_md5", "eval_candidates_md5"} <= set(tags)
    logged = {a.path for a in client.list_artifacts(first["run_id"], "metrics")}
    assert logged == {"metrics/metrics.json", "metrics/per_user.parquet"}
    assert (tmp_path / "mlruns").is_dir()

    make_artifacts(paths, 0.20, seed=10)  # worse: challenger, champion stays
    worse = register.run(cfg, paths)
    assert (worse["version"], worse["alias"], worse["promoted"]) == (2, "challenger", False)
    assert worse["champion_value_before"] == pytest.approx(0.30)
    assert aliases() == {"champion": 1, "challenger": 2}
    mv = client.get_model_version("negsamp", "2")
    assert mv.tags["decision"] == "challenger" and "<=" in mv.tags["reason"]

    make_artifacts(paths, 0.30, seed=20)  # a tie is not better
    assert register.run(cfg, paths)["alias"] == "challenger"

    make_artifacts(paths, 0.50, seed=30)  # better: champion moves
    better = register.run(cfg, paths)
    assert (better["version"], better["alias"], better["promoted"]) == (4, "champion", True)
    assert aliases() == {"champion": 4, "previous_champion": 1, "challenger": 3}

    write_json(paths.metrics, {"sampled_hr_10": 0.9})  # the gate metric is missing
    with pytest.raises(RegistrationError, match="sampled_ndcg_10"):
        register.run(cfg, paths)
    n_runs = len(client.search_runs([run.info.experiment_id]))
    assert n_runs == 4 and len(client.search_model_versions("name='negsamp'")) == 4

    write_json(paths.metrics, {"sampled_ndcg_10": 0.9})  # failure after the run started
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
    users = [RAW_USERS[0], RAW_USERS[3], unknown, RAW_USERS[5]]
    out = served.predict(pd.DataFrame({"user": users}), params={"k": k})
    assert list(out.columns) == ["user", "rank", "item", "score", "known_user"]
    assert out.groupby("user").size().to_dict() == dict.fromkeys(users, k)
    assert out["user"].tolist() == [u for u in users for _ in range(k)]  # input order kept
    assert out["rank"].tolist() == [1, 2, 3] * len(users)
    seen = {(RAW_USERS[u], RAW_ITEMS[i]) for u, i in TRAIN}
    assert not any((u, i) in seen for u, i in zip(out["user"], out["item"], strict=True))
    model = load_model(paths.model_dir)  # the seed-30 model is the champion
    from negsamp.interactions import Interactions

    pos = Interactions.from_arrays(*map(np.array, zip(*TRAIN, strict=True)), N_USERS, N_ITEMS)
    want, _ = model.recommend(np.array([0, 3, 5]), k, exclude=pos)
    known = out[out["known_user"]]
    assert known["item"].tolist() == [RAW_ITEMS[j] for j in want.ravel()]
    cold = out[out["user"] == unknown]
    assert not cold["known_user"].any()
    assert cold["item"].tolist() == ["i00", "i01", "i02"]  # most popular training items
    assert cold["score"].tolist() == [4.0, 3.0, 2.0]
    default_k = served.predict(pd.DataFrame({"user": [unknown]}))
    assert len(default_k) == N_ITEMS  # k=10 by default, capped at the catalogue


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


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
    cfg = Config(model=BPRCfg(factors=4), sweep=sweep)
    for name, value in (("a", 0.2), ("b", 0.4)):
        make_artifacts(paths.for_variant(name), value, seed=int(value * 10))
        write_json(paths.for_variant(name).metrics.with_name("ci.json"), {})
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
    statuses = {r.info.run_name: r.info.status for r in client.search_runs([exp])}
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
    assert [m.value for m in client.get_metric_history(rec["run_id"], "train_pairs_per_second")] \
        == [1e5, 1e5]  # fmt: skip
