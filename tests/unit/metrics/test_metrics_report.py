"""The assembled evaluation: boundary scorers on every metric, outputs, the stage's files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import evaluate as ev
from negsamp.config import BPRCfg, Config, EvaluateCfg
from negsamp.interactions import Interactions
from negsamp.io import write_parquet
from negsamp.metrics import report
from negsamp.metrics.artifacts import PLOTS, EvalFiles
from negsamp.metrics_names import CATALOG_LEVEL, estimated_by_sampling, headline_names
from negsamp.paths import Paths

N_USERS, N_ITEMS, M = 30, 60, 20
KS = (1, 5, 10, 100)
CFG = EvaluateCfg(ks=KS, plot_k=10, bootstrap=200, user_bands=(4, 6))


def _data(seed: int = 0) -> tuple[Interactions, pl.DataFrame, pl.DataFrame]:
    """Training positives (3-7 per user), one held-out item per user, M candidates per row."""
    rng = np.random.default_rng(seed)
    train_u, train_i, test_i, negs = [], [], [], []
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS, size=rng.integers(4, 9), replace=False)
        test_i.append(items[0])
        train_u += [u] * (items.size - 1)
        train_i += items[1:].tolist()
        negs.append(rng.choice(np.setdiff1d(np.arange(N_ITEMS), items), M, replace=False))
    train = Interactions.from_arrays(train_u, train_i, N_USERS, N_ITEMS)
    test = pl.DataFrame({"user": np.arange(N_USERS), "item": test_i})
    cands = test.with_columns(candidates=pl.Series(np.stack(negs), dtype=pl.Array(pl.Int64, M)))
    return train, test, cands


def _evaluate(scores: torch.Tensor, seed: int = 0) -> report.Evaluation:
    train, test, cands = _data()
    sr = ev.sampled_ranks(lambda u, i: scores[u[:, None], i], cands, "cpu", 7)
    fr = ev.full_ranking(lambda u: scores[u].clone(), train, test, max(KS), "cpu", 7)
    return report.build(cands, sr, fr, train, CFG, seed)


def _held_out_scores(value: float) -> torch.Tensor:
    _, test, _ = _data()
    s = torch.zeros(N_USERS, N_ITEMS)
    s[torch.arange(N_USERS), torch.from_numpy(test["item"].to_numpy().copy())] = value
    return s


def _accuracy(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith(("sampled_", "full_", "rescaled_"))}


def test_a_perfect_scorer_gets_1_everywhere() -> None:
    got = _evaluate(_held_out_scores(1.0)).metrics
    for name, value in _accuracy(got).items():
        k = int(name.rsplit("_", 1)[1]) if name.startswith("full_precision") else 1
        assert value == pytest.approx(1.0 / k), name  # precision@K: one relevant item of K
    assert got["bv_recall_1"] > 0.5  # BV shrinks towards its prior; it still sees a top item


def test_a_constant_scorer_gets_the_pessimistic_value() -> None:
    train, _, _ = _data()
    got = _evaluate(torch.zeros(N_USERS, N_ITEMS)).metrics
    n_cand = N_ITEMS - train.user_degrees()  # the held-out item is last among these
    for k in (1, 5, 10):
        assert got[f"sampled_hr_{k}"] == 0.0 and got[f"full_recall_{k}"] == 0.0
    assert got["sampled_mrr"] == pytest.approx(1 / (M + 1))
    assert got["full_mrr"] == pytest.approx(np.mean(1.0 / n_cand))
    assert got["sampled_hr_100"] == 1.0 and got["full_recall_100"] == 1.0  # K past the list


def test_a_reversed_scorer_gets_0_at_small_k() -> None:
    got = _evaluate(_held_out_scores(-1.0)).metrics
    for k in (1, 5, 10):
        for family in ("sampled_hr", "sampled_ndcg", "full_recall", "full_ndcg", "full_map"):
            assert got[f"{family}_{k}"] == 0.0, (family, k)


def test_outputs_hold_every_headline_metric_and_are_reproducible() -> None:
    scores = torch.from_numpy(np.random.default_rng(3).normal(size=(N_USERS, N_ITEMS)))
    res = _evaluate(scores.float())
    assert list(res.metrics) == [*headline_names(KS), "n_test_users", "n_test_rows"]
    per_user_names = [n for n in headline_names(KS) if not n.startswith(CATALOG_LEVEL)]
    assert list(res.ci) == per_user_names
    for n in per_user_names:
        low, high = res.ci[n]["ci_low"], res.ci[n]["ci_high"]
        assert low - 1e-6 <= res.metrics[n] <= high + 1e-6, n  # float32 sums in the bootstrap
    assert res.per_user.columns == ["user", "n_train", "n_test", "activity", *per_user_names]
    assert list(res.corrected) == [f for f, _ in estimated_by_sampling(KS)]
    row = res.corrected["full_recall_10"]
    assert row["exact"] == res.metrics["full_recall_10"]  # one held-out item per user
    assert row["bv_error"] == pytest.approx(row["bv"] - row["exact"])
    seg = res.segments
    assert set(seg["segment"]) == {"all", "user_activity", "item_popularity"}
    overall = seg.filter(pl.col("segment") == "all", pl.col("metric") == "full_ndcg_10")
    assert overall["value"][0] == res.metrics["full_ndcg_10"]
    by_band = seg.filter(pl.col("segment") == "item_popularity", pl.col("metric") == "full_ndcg_10")
    assert by_band["n_users"].sum() == N_USERS  # one held-out item each: one band each
    assert set(res.plots) == set(PLOTS)
    assert res.plots["at_k"]["k"].to_list() == list(KS)
    assert res.plots["estimators"]["estimator"].to_list() == ["exact", "sampled", "rescaled", "bv"]
    again = _evaluate(scores.float())
    assert again.metrics == res.metrics and again.ci == res.ci and again.segments.equals(seg)


def test_the_stage_writes_every_output(tmp_path: Path) -> None:
    from negsamp.models import build_model, save_model
    from negsamp.stages import evaluate as stage

    train, test, cands = _data()
    paths = Paths(root=tmp_path)
    model = build_model(BPRCfg(factors=4), N_USERS, N_ITEMS, torch.Generator().manual_seed(0))
    save_model(model, paths.model_dir)
    write_parquet(paths.user_ids, pl.DataFrame({"user": range(N_USERS)}))
    write_parquet(paths.item_ids, pl.DataFrame({"item": range(N_ITEMS)}))
    rows = pl.DataFrame({"user": train.rows(), "item": train.indices, "count": 1})
    write_parquet(paths.train, rows.cast(pl.Int32))
    write_parquet(paths.valid, rows.head(0).cast(pl.Int32))
    write_parquet(paths.test, test.with_columns(count=1).cast(pl.Int32))
    write_parquet(paths.eval_candidates, cands)
    cfg = Config.model_validate({"evaluate": CFG.model_dump()})
    metrics = stage.run(cfg, paths)
    files = EvalFiles(paths.for_variant("default"))
    assert json.loads(files.metrics.read_text()) == pytest.approx(metrics)
    for f in [files.per_user, *files.reports()]:
        assert f.is_file(), f
    first = {f: f.read_bytes() for f in [files.metrics, *files.reports()]}
    stage.run(cfg, paths)
    assert {f: f.read_bytes() for f in first} == first  # same inputs, same bytes


def test_evaluate_config_checks_plot_k_and_bands() -> None:
    from negsamp.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="plot_k=7 must be one of ks"):
        from_dict({"evaluate": {"ks": [5, 10], "plot_k": 7}})
    with pytest.raises(ConfigError, match="user_bands"):
        from_dict({"evaluate": {"user_bands": [50, 10]}})
    with pytest.raises(ConfigError, match="item_bands"):
        from_dict({"evaluate": {"item_bands": [0.5, 1.0]}})
    with pytest.raises(ConfigError, match="full_ndcg_7"):
        from_dict({"registry": {"metric": "full_ndcg_7"}})
    assert from_dict({"registry": {"metric": "bv_recall_10"}}).registry.metric == "bv_recall_10"


def test_registry_logs_the_nested_reports_as_flat_metrics(tmp_path: Path) -> None:
    from negsamp.io import write_json
    from negsamp.mlops.tracking import evaluation_reports

    files = EvalFiles(Paths(root=tmp_path))
    assert evaluation_reports(Paths(root=tmp_path)) == {}
    write_json(files.ci, {"full_ndcg_10": {"ci_low": 0.1, "ci_high": 0.2}})
    write_json(files.corrected, {"full_recall_10": {"exact": 0.3, "bv": 0.25, "bv_error": -0.05}})
    assert evaluation_reports(Paths(root=tmp_path)) == {
        "full_ndcg_10.ci_low": 0.1,
        "full_ndcg_10.ci_high": 0.2,
        "full_recall_10.exact": 0.3,
        "full_recall_10.bv": 0.25,
        "full_recall_10.bv_error": -0.05,
    }


def test_negsamp_compare_on_two_per_user_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from negsamp.cli import app

    a = pl.DataFrame({"user": range(50), "full_ndcg_10": np.linspace(0, 1, 50)})
    write_parquet(tmp_path / "a" / "per_user.parquet", a)
    write_parquet(tmp_path / "b.parquet", a)
    out = tmp_path / "cmp.csv"
    res = CliRunner().invoke(
        app, ["compare", str(tmp_path / "a"), str(tmp_path / "b.parquet"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "full_ndcg_10" in res.output and "50 common users" in res.output
    row = pl.read_csv(out).row(0, named=True)
    assert row["diff"] == 0.0 and row["p_value"] == 1.0  # identical runs: no difference
    missing = CliRunner().invoke(app, ["compare", str(tmp_path / "nope.parquet"), str(out)])
    assert missing.exit_code == 1 and "not found" in missing.output
