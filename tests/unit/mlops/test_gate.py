"""The champion gate (issue #12): same split for both, never a wrong promotion.

A catalog-level metric is compared with the champion's value re-computed on the current
split, with the margin; a champion whose run or model is gone, or whose metric is NaN, is
never replaced automatically; an MLflow error while reading the champion is never "no
champion"; the alias is read once. Each on a real sqlite store.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from negsamp.io import read_json
from negsamp.mlops.errors import RegistrationError, TrackingUnavailable
from tests.unit.mlops import world

pytestmark = pytest.mark.slow

METRIC = "sampled_ndcg_10"


def aliases(client: Any) -> dict[str, int]:
    return {a: int(v) for a, v in client.get_registered_model("negsamp").aliases.items()}


def n_versions(client: Any) -> int:
    return len(client.search_model_versions("name='negsamp'"))


def n_runs(client: Any) -> int:
    return len(client.search_runs([client.get_experiment_by_name("negsamp").experiment_id]))


def champion_v1(root: Path, cfg: Any) -> tuple[Any, dict[str, Any]]:
    """A project whose model is registered as champion v1: (paths, its registration)."""
    from negsamp.stages import register

    paths = world.build(root, cfg, seed=0)
    first = register.run(cfg, paths)
    assert (first["version"], first["alias"]) == (1, "champion")
    return paths, first


def much_better(paths: Any) -> None:
    """A challenger far ahead of the champion on every user (would be promoted)."""
    champ = world.per_user(paths, METRIC)
    gained = champ.with_columns(pl.col(METRIC) + 0.3)
    world.set_challenger(paths, METRIC, gained, float(gained[METRIC].mean()))


def test_catalog_metric_uses_the_champion_recomputed_on_this_split_and_the_margin(
    tmp_path: Path, store: Any
) -> None:
    from negsamp.stages import register

    name = "coverage_5"
    cfg = world.config(metric=name, margin=0.1)
    paths, first = champion_v1(tmp_path, cfg)
    c0 = read_json(paths.metrics)[name]  # v1's value on the current split
    store.log_metric(first["run_id"], name, 0.0)  # what it logged is not what the gate uses

    world.train_model(paths, cfg, seed=10)
    world.set_challenger(paths, name, None, c0 + 0.05)  # better, but by less than the margin
    small = register.run(cfg, paths)
    assert (small["alias"], small["promoted"]) == ("challenger", False)
    assert small["champion_value_before"] == pytest.approx(c0)
    assert "catalog-level" in small["reason"] and "current test split" in small["reason"]
    assert small["gate"]["diff"] == pytest.approx(0.05) and small["gate"]["p_value"] is None

    world.set_challenger(paths, name, None, c0 + 0.2)
    big = register.run(cfg, paths)
    assert (big["alias"], big["promoted"], big["version"]) == ("champion", True, 3)
    assert big["champion_value_before"] == pytest.approx(c0)
    assert aliases(store) == {"champion": 3, "previous_champion": 1, "challenger": 2}


@pytest.mark.parametrize("lost", ["run", "artifacts"])
def test_a_champion_whose_run_or_model_is_gone_is_not_replaced(
    tmp_path: Path, store: Any, lost: str
) -> None:
    from negsamp.stages import register

    cfg = world.config()
    paths, first = champion_v1(tmp_path, cfg)
    if lost == "run":
        store.delete_run(first["run_id"])
    else:
        where = store.get_model_version_download_uri("negsamp", "1")
        shutil.rmtree(where.removeprefix("file://"))
    much_better(paths)
    second = register.run(cfg, paths)
    assert (second["alias"], second["promoted"], second["version"]) == ("challenger", False, 2)
    assert "champion v1 cannot be evaluated" in second["reason"]
    assert ("is deleted" if lost == "run" else "cannot be loaded") in second["reason"]
    assert "by hand" in second["reason"]
    assert aliases(store) == {"champion": 1, "challenger": 2}
    mv = store.get_model_version("negsamp", "2")
    assert mv.tags["decision"] == "challenger" and "cannot be evaluated" in mv.tags["reason"]


@pytest.mark.parametrize("name", [METRIC, "gini_10"])
def test_a_champion_metric_that_is_nan_on_this_split_never_promotes(
    tmp_path: Path, store: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from negsamp.stages import register

    cfg = world.config(metric=name, greater_is_better=name == METRIC)
    paths, _ = champion_v1(tmp_path, cfg)
    real = register.reevaluate_champion

    def nan_champion(*args: Any) -> Any:
        ev = real(*args)
        if name == METRIC:
            per_user = ev.per_user.with_columns(
                pl.when(pl.col("user") == 3).then(float("nan")).otherwise(pl.col(name)).alias(name)
            )
            return ev.__class__(**(ev.__dict__ | {"per_user": per_user}))
        return ev.__class__(**(ev.__dict__ | {"metrics": ev.metrics | {name: float("nan")}}))

    monkeypatch.setattr(register, "reevaluate_champion", nan_champion)
    if name == METRIC:
        much_better(paths)
    else:
        world.set_challenger(paths, name, None, 0.0)  # the most even catalog: best possible
    second = register.run(cfg, paths)
    assert (second["alias"], second["promoted"]) == ("challenger", False)
    assert "not promoted: the champion's" in second["reason"]
    assert aliases(store) == {"champion": 1, "challenger": 2}


def test_a_challenger_metric_that_is_nan_fails_before_mlflow_is_touched(
    tmp_path: Path, store: Any
) -> None:
    from negsamp.stages import register

    cfg = world.config()
    paths, _ = champion_v1(tmp_path, cfg)
    champ = world.per_user(paths, METRIC)
    nan = pl.when(pl.col("user") == 0).then(None).otherwise(pl.col(METRIC)).alias(METRIC)
    world.set_challenger(paths, METRIC, champ.with_columns(nan), 0.9)
    with pytest.raises(RegistrationError, match=r"not finite for 1 of 24 users"):
        register.run(cfg, paths)
    world.set_challenger(paths, METRIC, champ, float("nan"))  # metrics.json: NaN
    with pytest.raises(RegistrationError, match=r"(no|not a) finite"):
        register.run(cfg, paths)
    assert (n_runs(store), n_versions(store), aliases(store)) == (1, 1, {"champion": 1})


def _refused(*args: Any, **kwargs: Any) -> None:
    """What MLflow raises once its retries on a refused connection are spent."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        raise requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    except requests.exceptions.ConnectionError as err:
        raise MlflowException(f"API request to http://x failed with exception {err}") from None


def _denied(*args: Any, **kwargs: Any) -> None:
    from mlflow.exceptions import MlflowException

    raise MlflowException("no access to negsamp", error_code="PERMISSION_DENIED")


@pytest.mark.parametrize("error", [_refused, _denied])
def test_an_mlflow_error_reading_the_champion_is_never_no_champion(
    tmp_path: Path, store: Any, monkeypatch: pytest.MonkeyPatch, error: Any
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from negsamp.stages import register

    cfg = world.config()
    paths, _ = champion_v1(tmp_path, cfg)
    much_better(paths)
    calls: list[int] = []

    def lookup(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        error()

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", lookup)
    if error is _refused:
        with pytest.raises(TrackingUnavailable) as got:
            register.run(cfg, paths)
        msg = str(got.value)
        assert msg.startswith(f"MLflow at sqlite:///{tmp_path}/mlflow.db did not answer")
        assert "connection refused" in msg and "MLFLOW_HTTP_REQUEST_MAX_RETRIES=" in msg
        assert msg.endswith("the model registry was not changed.") and msg.count(". ") == 0
    else:
        with pytest.raises(MlflowException, match="no access") as got:
            register.run(cfg, paths)
        assert not isinstance(got.value, TrackingUnavailable)
        assert "the model registry was not changed" in " ".join(got.value.__notes__)
    assert len(calls) == 1  # MLflow retries transient errors itself; negsamp adds no loop
    monkeypatch.undo()
    assert (n_runs(store), n_versions(store), aliases(store)) == (1, 1, {"champion": 1})


def test_the_champion_alias_is_read_once_per_registration(
    tmp_path: Path, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from negsamp.stages import register

    cfg = world.config()
    paths, _ = champion_v1(tmp_path, cfg)
    much_better(paths)
    real, reads = MlflowClient.get_model_version_by_alias, []

    def counted(self: Any, name: str, alias: str) -> Any:
        reads.append(alias)
        return real(self, name, alias)

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", counted)
    second = register.run(cfg, paths)
    assert second["promoted"] and reads == ["champion"]
    assert aliases(store) == {"champion": 2, "previous_champion": 1}


def test_no_alias_and_no_registered_model_both_mean_no_champion(tmp_path: Path, store: Any) -> None:
    from negsamp.mlops import champion
    from negsamp.stages import register

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert champion.read(uri, "negsamp") is None  # no registered model at all
    cfg = world.config()
    paths, _ = champion_v1(tmp_path, cfg)
    found = champion.read(uri, "negsamp")
    assert (found.version, found.problem, found.users.height) == (1, None, world.N_USERS)
    store.delete_registered_model_alias("negsamp", "champion")
    assert champion.read(uri, "negsamp") is None  # the model exists, the alias does not
    again = register.run(cfg, paths)
    assert (again["version"], again["reason"]) == (2, "no champion yet")


def test_a_champion_trained_on_another_dataset_is_not_compared_issue_13(
    tmp_path: Path, store: Any
) -> None:
    """After the old demo-drift, a MovieLens model was crowned over the synthetic champion in
    the same registered model. Now: registered as challenger, the reason names both datasets.
    The champion's own ``dataset`` tag is removed, as on a version registered before it
    existed: its logged data.source / data.path params say the same."""
    from negsamp.config import DataCfg
    from negsamp.stages import register

    cfg = world.config()
    paths, first = champion_v1(tmp_path, cfg)
    assert store.get_run(first["run_id"]).data.tags["dataset"] == (
        "synthetic:data/raw/synthetic.parquet"
    )
    store.delete_tag(first["run_id"], "dataset")
    much_better(paths)  # would be promoted on the same dataset
    movielens = DataCfg(source="movielens-100k", path="data/raw/ml-100k/u.data")
    other = cfg.model_copy(update={"data": movielens})

    got = register.run(other, paths)

    assert (got["alias"], got["promoted"], got["version"]) == ("challenger", False, 2)
    assert got["reason"].startswith(
        "champion v1 was trained on synthetic:data/raw/synthetic.parquet, this model on "
        "movielens-100k:data/raw/ml-100k/u.data: not comparable"
    )
    assert aliases(store) == {"champion": 1, "challenger": 2}
    version = store.get_model_version("negsamp", "2")
    assert version.tags["dataset"] == "movielens-100k:data/raw/ml-100k/u.data"
    assert version.tags["reason"] == got["reason"]
