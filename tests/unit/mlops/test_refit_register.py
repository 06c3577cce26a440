"""Issue #13, point 2: the champion serves its configuration refit on every interaction.

A real sqlite MLflow and the tiny project of :mod:`tests.unit.mlops.world`: the promoted
version's pyfunc is the refit (tags say so, and on which snapshot), its run holds the
held-out evidence it won with, its top-K never holds an item of the user's whole log, a
later gate re-evaluates the held-out model, a loser costs no refit, ``registry.refit:
false`` serves the held-out model, and a refit that fails leaves the registry untouched.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from negsamp.io import read_json
from negsamp.mlops.tracking import read_metrics_table
from negsamp.models import load_model
from tests.unit.mlops import world

pytestmark = pytest.mark.slow

METRIC = "sampled_ndcg_10"


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def _pyfunc(uri: str, version: int):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.pyfunc.load_model(f"models:/negsamp/{version}")


def _assert_never_seen(paths, out: pd.DataFrame) -> None:
    log_ = pl.read_parquet(paths.interactions, columns=["user", "item"])
    seen = {(world.RAW_USERS[u], world.RAW_ITEMS[i]) for u, i in log_.rows()}
    assert not any((u, i) in seen for u, i in zip(out["user"], out["item"], strict=True))
    degree = log_.group_by("user").len()  # every unseen item is there: only seen ones are out
    want = {world.RAW_USERS[u]: world.N_ITEMS - n for u, n in degree.rows()}
    assert out.groupby("user").size().to_dict() == want


def test_a_promoted_configuration_is_refit_and_the_champion_serves_the_refit(
    tmp_path, store
) -> None:
    from negsamp.mlops import champion as champions
    from negsamp.stages import recommend, register

    uri, client = f"sqlite:///{tmp_path}/mlflow.db", store
    cfg = world.config()
    paths = world.build(tmp_path, cfg, seed=0)
    rec = register.run(cfg, paths)
    assert (rec["version"], rec["alias"], rec["promoted"]) == (1, "champion", True)
    assert rec["served_model"] == "data/registry/refit/model"
    log_ = pl.read_parquet(paths.interactions)
    tags = {
        "refit": "yes",
        "refit_epochs": "2",  # the kept epoch of history.json (its best, the last of two)
        "refit_snapshot": "0",  # no appended batch
        "refit_positives": str(log_.height),  # train, validation and test alike
    }
    mv = client.get_model_version("negsamp", "1")
    assert tags.items() <= mv.tags.items() and len(mv.tags["refit_data_md5"]) == 32
    run = client.get_run(rec["run_id"])
    assert tags.items() <= run.data.tags.items()
    assert (
        read_json(paths.refit_manifest)
        == rec["refit"]
        == {"refit": True, "config": "default"}
        | {k: v for k, v in mv.tags.items() if k.startswith("refit_")}
    )

    # the held-out evidence it won with: the evaluated configuration's metrics, unchanged
    evaluated = read_json(paths.metrics)
    logged = {k: row["value"] for k, row in read_metrics_table(client, run.info.run_id).items()}
    numbers = {k: v for k, v in evaluated.items() if isinstance(v, float) and math.isfinite(v)}
    assert numbers and numbers.keys() <= logged.keys()
    assert all(logged[k] == pytest.approx(v) for k, v in numbers.items())
    assert run.data.metrics[METRIC] == pytest.approx(evaluated[METRIC])  # a chart of its own
    assert rec["value"] == pytest.approx(evaluated[METRIC])
    assert float(mv.tags["metric_value"]) == pytest.approx(evaluated[METRIC])

    # the pyfunc serves the refit; the held-out model travels with it for later gates
    wrapper = _pyfunc(uri, 1).unwrap_python_model()
    refit, heldout = load_model(paths.refit_model), load_model(paths.model_dir)
    assert _same(wrapper._model, refit) and not _same(refit, heldout)
    assert _same(load_model(wrapper._heldout_dir), heldout)
    assert _same(champions.read(uri, "negsamp").model, heldout)

    # served top-K: never an item of the user's full history (issue #13)
    users = pd.DataFrame({"user": world.RAW_USERS})
    _assert_never_seen(paths, _pyfunc(uri, 1).predict(users, params={"k": world.N_ITEMS}))
    manifest = recommend.run(cfg, paths)  # the batch route serves the refit too
    assert manifest["model_dir"] == rec["served_model"] and manifest["refit"] is True
    recs = pl.read_parquet(paths.recommendations)
    seen = set(log_.select("user", "item").rows())
    raw_u = {r: d for d, r in enumerate(world.RAW_USERS)}
    raw_i = {r: d for d, r in enumerate(world.RAW_ITEMS)}
    assert recs.height == world.N_USERS * cfg.recommend.k
    assert not any((raw_u[u], raw_i[i]) in seen for u, i in recs.select("user", "item").rows())

    # a loser is not refit; the gate re-evaluated the champion's held-out model
    champ = world.per_user(paths, METRIC)  # v1's held-out model on the current split
    world.train_model(paths, cfg, seed=10)
    world.set_challenger(paths, METRIC, champ.with_columns(pl.col(METRIC) * 0.5), 0.0)
    worse = register.run(cfg, paths)
    assert (worse["version"], worse["promoted"]) == (2, False)
    assert worse["champion_value_before"] == pytest.approx(float(champ[METRIC].mean()))
    assert worse["refit"] == {"refit": False, "config": "default", "reason": "not promoted"}
    assert worse["served_model"] == "data/models/default/model"
    assert not paths.refit_model.exists() and read_json(paths.refit_manifest) == worse["refit"]
    assert client.get_model_version("negsamp", "2").tags["refit"] == "no"

    # the loser is not what the batch job gets: the champion (v1's refit) keeps serving
    kept = recommend.run(cfg, paths)
    assert (kept["model_dir"], kept["served_version"], kept["refit"]) == (
        "models:/negsamp/1",
        1,
        True,
    )
    assert kept["users_popularity"] == 0
    assert pl.read_parquet(paths.recommendations).drop("score").equals(recs.drop("score"))


def test_refit_false_serves_the_held_out_model(tmp_path, store) -> None:
    from negsamp.stages import register

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = world.config(refit=False)
    paths = world.build(tmp_path, cfg, seed=0)
    rec = register.run(cfg, paths)
    assert rec["promoted"] and rec["served_model"] == "data/models/default/model"
    assert rec["refit"] == {
        "refit": False,
        "config": "default",
        "reason": "registry.refit is false",
    }
    assert store.get_model_version("negsamp", "1").tags["refit"] == "no"
    wrapper = _pyfunc(uri, 1).unwrap_python_model()
    assert _same(wrapper._model, load_model(paths.model_dir)) and not wrapper._heldout_dir
    assert not paths.refit_model.exists()


def test_a_failed_refit_leaves_the_registry_untouched(tmp_path, store, monkeypatch) -> None:
    from negsamp import refit as refits
    from negsamp.stages import register

    cfg = world.config()
    paths = world.build(tmp_path, cfg, seed=0)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("refit boom")

    monkeypatch.setattr(refits, "refit", boom)
    with pytest.raises(RuntimeError, match="refit boom"):
        register.run(cfg, paths)
    assert store.search_registered_models() == []
    assert store.search_runs([e.experiment_id for e in store.search_experiments()]) == []
    assert not paths.registration.exists()


def test_an_identical_champion_keeps_serving_its_refit(tmp_path, store, monkeypatch) -> None:
    from negsamp.mlops import fingerprint
    from negsamp.stages import register

    cfg = world.config()
    paths = world.build(tmp_path, cfg, seed=0)
    monkeypatch.setattr(fingerprint, "compute", lambda *a, **k: "f" * 32)  # a clean commit
    first = register.run(cfg, paths)
    weights = (paths.refit_model / "weights.pt").read_bytes()
    again = register.run(cfg, paths)
    assert not again["registered"] and again["version"] == first["version"]
    assert again["refit"] == first["refit"] and again["served_model"] == first["served_model"]
    assert (paths.refit_model / "weights.pt").read_bytes() == weights
