"""The Python API (issue #15 point 1) on a small DataFrame: the stages' code paths in memory."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import negsamp
from negsamp.config import ConfigError
from negsamp.metrics_names import headline_names

ROOT = Path(__file__).resolve().parents[2]


def _events(n_users: int = 60, n_items: int = 240, n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    users = rng.integers(0, n_users, n)
    items = (users % 4) * (n_items // 4) + rng.zipf(1.4, n) % (n_items // 4)
    return pd.DataFrame(
        {
            "uid": [f"u{u:03d}" for u in users],  # string ids
            "iid": 500 + items,  # int ids that are not 0..n-1
            "ts": rng.integers(0, 10**6, n),
        }
    )


@pytest.fixture(scope="module")
def data() -> negsamp.Interactions:
    return negsamp.Interactions.from_frame(_events(), user="uid", item="iid", timestamp="ts")


@pytest.fixture(scope="module")
def parts(data: negsamp.Interactions) -> negsamp.Split:
    return negsamp.split(data)


@pytest.fixture(scope="module")
def model(parts: negsamp.Split) -> negsamp.Model:
    return negsamp.fit(parts, model="bpr", sampler="popularity", epochs=3, factors=8, seed=1)


def _positives(df: pd.DataFrame) -> set[tuple[str, int]]:
    return set(zip(df["uid"], df["iid"].astype(int), strict=True))


def test_from_frame_keeps_original_ids_polars_and_pandas(data: negsamp.Interactions) -> None:
    df = _events()
    assert data.user_ids.dtype == pl.String and set(data.user_ids) == set(df["uid"])
    assert set(data.item_ids.to_list()) == set(df["iid"].tolist())
    assert len(data) == len(_positives(df))  # repeated events aggregate to one positive
    again = negsamp.Interactions.from_frame(pl.from_pandas(df), "uid", "iid", timestamp="ts")
    assert again.frame.equals(data.frame)


def test_sample_negatives_shape_no_positive_and_seeded(data: negsamp.Interactions) -> None:
    kw = {"sampler": "popularity", "alpha": 0.75, "n_neg": 5, "seed": 3}
    negs = negsamp.sample_negatives(data, **kw)
    assert negs.columns == ["user", "item", "epoch", "negatives"]
    assert negs.height == len(data) and negs["negatives"].dtype.size == 5
    assert negs["user"].dtype == pl.String  # original ids back
    pos = _positives(_events())
    assert set(zip(negs["user"], negs["item"], strict=True)) == pos
    pairs = negs.select("user", pl.col("negatives").arr.to_list()).explode("negatives")
    assert not pos & set(zip(pairs["user"], pairs["negatives"], strict=True))
    assert negs.equals(negsamp.sample_negatives(data, **kw))  # same seed, same draws
    assert not negs.equals(negsamp.sample_negatives(data, **{**kw, "seed": 4}))
    epochs = negsamp.sample_negatives(data, n_neg=2, pool_epochs=3)
    assert epochs.height == 3 * len(data) and sorted(epochs["epoch"].unique()) == [0, 1, 2]


def test_a_bad_keyword_gets_the_params_yaml_message(
    data: negsamp.Interactions, parts: negsamp.Split
) -> None:
    with pytest.raises(ConfigError, match=r"sampler\.popularity\.alfa: unknown key"):
        negsamp.sample_negatives(data, sampler="popularity", alfa=0.5)
    with pytest.raises(ConfigError, match=r"model\.bpr\.fctors: unknown key"):
        negsamp.fit(parts, model="bpr", fctors=8)
    with pytest.raises(ConfigError, match=r"sampler\.popularity\.alpha"):
        negsamp.sample_negatives(data, sampler="popularity", alpha=2.0)


def test_fit_trains_with_validation_and_is_deterministic(
    parts: negsamp.Split, model: negsamp.Model
) -> None:
    assert len(model.history) == 3 and "valid_sampled_ndcg_10" in model.history[-1]
    assert model.config.model.active.factors == 8 and model.config.sampler.name == "popularity"
    again = negsamp.fit(parts, model="bpr", sampler="popularity", epochs=3, factors=8, seed=1)
    for a, b in zip(model.net.parameters(), again.net.parameters(), strict=True):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_evaluate_returns_the_pipelines_metric_names(
    parts: negsamp.Split, model: negsamp.Model
) -> None:
    metrics = negsamp.evaluate(model, parts, bootstrap=10)
    ks = negsamp.config.EvaluateCfg().ks
    assert set(headline_names(ks)) <= set(metrics)
    assert metrics["n_test_users"] == parts.test["user"].n_unique()
    assert 0.0 <= metrics["sampled_ndcg_10"] <= metrics["sampled_hr_10"] <= 1.0


def test_recommend_returns_original_unseen_ids(model: negsamp.Model) -> None:
    users = ["u001", "u002", "u003"]
    recs = model.recommend(users, k=5)
    assert recs.columns == ["user", "rank", "item", "score"]
    assert recs["user"].unique(maintain_order=True).to_list() == users
    assert recs.group_by("user").len()["len"].to_list() == [5, 5, 5]
    seen = _positives(_events())  # seen anywhere: train, validation or test
    assert not seen & set(zip(recs["user"], recs["item"], strict=True))
    assert set(recs["item"]) <= set(model.data.item_ids)
    with pytest.raises(ValueError, match="not in the interactions"):
        model.recommend(["nobody"], k=5)


def test_split_and_evaluate_are_both_modules_and_functions() -> None:
    """negsamp.split / negsamp.evaluate are the pure modules the stages import and the API's
    functions, whichever is imported first."""
    code = (
        "import negsamp, negsamp.evaluate as ev, negsamp.split as sp; "
        "assert callable(negsamp.split) and callable(negsamp.evaluate); "
        "assert ev.sampled_ranks and sp.min_needed; "
        "assert negsamp.split is sp and negsamp.evaluate is ev"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_import_negsamp_does_not_import_the_stack() -> None:
    code = (
        "import sys, negsamp; heavy = {'torch', 'polars', 'mlflow', 'negsamp.api'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_quickstart_example_runs() -> None:
    metrics = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))["main"]()
    assert metrics["sampled_hr_10"] > 0.0
