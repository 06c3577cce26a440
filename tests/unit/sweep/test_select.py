"""Choosing a sweep's configuration on validation, not on test (issue #12, point 7).

The register stage (what goes to the champion gate) and the report stage (the order of the
comparison table) make the same choice: the highest ``valid_<train.monitor>`` at the epoch
whose weights were kept, from each configuration's history.json.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from negsamp.config import Config, SplitCfg, SweepCfg, VariantCfg
from negsamp.io import read_json, write_json, write_parquet
from negsamp.metrics.artifacts import EvalFiles
from negsamp.mlops.errors import RegistrationError
from negsamp.paths import Paths
from negsamp.sweep.select import Candidate, SelectionError, choose, choose_for, kept_value

NAN = float("nan")
KEY = "valid_sampled_ndcg_10"


def _h(*values: float) -> list[dict[str, float]]:
    """A history.json whose epochs have these validation values."""
    return [{"epoch": e, "loss": 1.0 / (e + 1), KEY: v} for e, v in enumerate(values)]


def _c(name: str, *values: float, monitor: str = "sampled_ndcg_10", best: bool = True):
    return Candidate(name, monitor, best, _h(*values))


# --------------------------------------------------------------------------- the kept epoch


def test_the_value_is_the_kept_epochs() -> None:
    assert kept_value(_h(0.2, 0.4, 0.3), "sampled_ndcg_10", restore_best=True) == 0.4
    assert kept_value(_h(0.2, 0.4, 0.3), "sampled_ndcg_10", restore_best=False) == 0.3
    # a NaN epoch is never the best (training's `value > best` is False for NaN)
    assert kept_value(_h(0.2, NAN, 0.1), "sampled_ndcg_10", restore_best=True) == 0.2
    assert kept_value(_h(0.2, 0.3, NAN), "sampled_ndcg_10", restore_best=False) is None
    # no finite epoch: training keeps the last weights, whose value is NaN
    assert kept_value(_h(NAN, NAN), "sampled_ndcg_10", restore_best=True) is None
    assert kept_value([], "sampled_ndcg_10", restore_best=True) is None
    # split.validation: false leaves no valid_ keys at all
    assert kept_value([{"epoch": 0, "loss": 1.0}], "sampled_ndcg_10", True) is None
    assert kept_value(_h(0.2), "full_ndcg_10", restore_best=True) is None  # another key


# --------------------------------------------------------------------------- the choice


def test_the_highest_validation_value_is_chosen_ties_by_name() -> None:
    s = choose([_c("b", 0.1, 0.5), _c("c", 0.2), _c("a", 0.5, 0.4)], validation=True)
    assert (s.chosen, s.on, s.monitor, s.key) == ("a", "valid", "sampled_ndcg_10", KEY)
    assert s.order == ("a", "b", "c") and s.values == {"a": 0.5, "b": 0.5, "c": 0.2}
    assert s.describe() == "chosen on validation: sampled_ndcg_10 (valid); test metrics report only"
    # without restore_best the last epoch's weights were kept: b's 0.1 is no longer best
    s = choose([_c("b", 0.9, 0.1, best=False), _c("c", 0.2)], validation=True)
    assert (s.chosen, s.values["b"]) == ("c", 0.1)


def test_one_configuration_needs_no_choice() -> None:
    s = choose([Candidate("only", "sampled_ndcg_10", True, [])], validation=False)
    assert (s.chosen, s.on, s.order, s.values) == ("only", "single", ("only",), {"only": None})
    assert s.describe() == "one configuration: nothing to choose; test metrics report only"


def test_a_configuration_without_a_finite_value_cannot_be_chosen(caplog) -> None:
    s = choose([_c("a", NAN), _c("b", 0.1), _c("c", NAN, 0.15, best=False)], validation=True)
    assert (s.chosen, s.order, s.unchosen) == ("c", ("c", "b", "a"), ("a",))
    assert "a cannot be chosen: no finite valid_sampled_ndcg_10" in caplog.text
    with pytest.raises(SelectionError, match="none of a, b has a finite valid_sampled_ndcg_10"):
        choose([_c("a", NAN), Candidate("b", "sampled_ndcg_10", True, [])], validation=True)


def test_a_sweep_without_a_validation_split_is_refused() -> None:
    with pytest.raises(SelectionError, match=r"set split\.validation: true") as e:
        choose([_c("a", 0.1), _c("b", 0.2)], validation=False)
    assert "a sweep of 2 configurations (a, b)" in str(e.value)


def test_configurations_watching_different_metrics_are_refused() -> None:
    cands = [_c("a", 0.1), _c("b", 0.2, monitor="full_ndcg_10"), _c("c", 0.3)]
    with pytest.raises(SelectionError, match="set one train.monitor for the whole sweep") as e:
        choose(cands, validation=True)
    assert "full_ndcg_10: b; sampled_ndcg_10: a, c" in str(e.value)


def test_choose_for_reads_each_configurations_own_train_section() -> None:
    configs = {"a": VariantCfg(), "b": VariantCfg(train={"restore_best": False})}
    cfg = Config(sweep=SweepCfg(configs=configs))
    s = choose_for(cfg, {"a": _h(0.3, 0.2), "b": _h(0.1, 0.4, 0.25)})
    assert (s.chosen, s.values) == ("a", {"a": 0.3, "b": 0.25})
    cfg = Config(
        sweep=SweepCfg(configs={**configs, "c": VariantCfg(train={"monitor": "full_ndcg_10"})})
    )
    with pytest.raises(SelectionError, match="different validation metrics"):
        choose_for(cfg, {"a": _h(0.3), "b": _h(0.4), "c": _h(0.5)})
    no_valid = Config(split=SplitCfg(validation=False), sweep=SweepCfg(configs=configs))
    with pytest.raises(SelectionError, match="split.validation is false"):
        choose_for(no_valid, {"a": _h(), "b": _h()})


# --------------------------------------------------------------------------- the stages

# The ML-100k sweep: `lr002` wins on test, `f128` on validation.
VALID = {"lr002": (0.31, 0.352, 0.348), "f128": (0.33, 0.361, 0.355)}
TEST = {"lr002": 0.357, "f128": 0.350}
SWEEP = {
    "lr002": VariantCfg(train={"lr": 0.002}),
    "f128": VariantCfg(model={"bpr": {"factors": 128}}),
}


def _write_outputs(root: Path) -> tuple[Config, Paths]:
    """By hand, what train and evaluate leave for report and register, per configuration."""
    cfg, paths = Config(sweep=SweepCfg(configs=SWEEP)), Paths(root=root)
    rng = np.random.default_rng(0)
    for name in SWEEP:
        vp = paths.for_variant(name)
        history = _h(*VALID[name])
        for h in history:
            h.update(seconds=1.0, pairs_per_second=1e4)
        write_json(vp.train_history, history)
        metrics = {m: TEST[name] for m in ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10")}
        write_json(vp.metrics, {**metrics, "full_ndcg_10": TEST[name] / 2})
        write_json(
            EvalFiles(vp).ci,
            {m: {"ci_low": v - 0.01, "ci_high": v + 0.01} for m, v in metrics.items()},
        )
        hits = (rng.random(100) < TEST[name]).astype(float)
        write_parquet(vp.per_user, pl.DataFrame({"user": np.arange(100), "sampled_ndcg_10": hits}))
        write_json(vp.train_pool_manifest, {"timing": {"negatives_per_second": 1e6}})
    return cfg, paths


@contextlib.contextmanager
def console_width(columns: int):
    """Rich and typer print into a buffer as on a ``columns``-wide terminal."""
    import io
    import os
    from unittest import mock

    buf = io.StringIO()
    with (
        mock.patch.dict(os.environ, {"COLUMNS": str(columns)}),
        contextlib.redirect_stdout(buf),
    ):
        yield buf.getvalue


def test_the_validation_winner_is_chosen_where_test_would_choose_the_other(tmp_path) -> None:
    """Issue #12: two configurations whose validation and test orders differ; the register
    stage and the report stage both choose the validation winner."""
    from negsamp.stages import register, report

    cfg, paths = _write_outputs(tmp_path)
    assert max(TEST, key=TEST.__getitem__) == "lr002"  # what choosing on test did
    best, values = register.best_variant(cfg, paths)
    assert best == "f128" and values == {"lr002": 0.352, "f128": 0.361}

    report.run(cfg, paths)
    out = read_json(paths.comparison)
    assert out["best"] == "f128"
    assert [(r["config"], r["valid"], r["best"]) for r in out["rows"]] == [
        ("f128", 0.361, True),
        ("lr002", 0.352, False),
    ]
    assert (out["chosen_on"], out["monitor"], out["metric"]) == (
        "valid",
        "sampled_ndcg_10",
        "sampled_ndcg_10",
    )
    # the test figures still report: the chosen one is worse on test, and the table says so
    assert out["rows"][0]["values"]["sampled_ndcg_10"] == pytest.approx(0.350)
    assert out["rows"][1]["vs_best"]["diff"] == pytest.approx(
        pl.read_parquet(paths.for_variant("lr002").per_user)["sampled_ndcg_10"].mean()
        - pl.read_parquet(paths.for_variant("f128").per_user)["sampled_ndcg_10"].mean()
    )
    for page in ("comparison.md", "comparison.html"):
        text = (paths.report_dir / page).read_text()
        assert "chosen on validation: sampled_ndcg_10 (valid); test metrics report only" in text
        assert "valid sampled_ndcg_10" in text and "0.3610" in text

    # the terminal's table (`negsamp sweep`) fits 100 columns and keeps what decides
    from negsamp.cli import output

    with console_width(100) as printed:
        output.comparison(out)
    lines = printed().splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    text = "\n".join(lines)
    assert "sweep: 2 configurations, sampled_ndcg_10" in text
    assert "| 1 | f128          | uniform |     4 | 0.3610 |" in text.replace("│", "|")


def test_register_refuses_what_cannot_be_chosen_before_mlflow(tmp_path) -> None:
    from negsamp.stages import register

    cfg, paths = _write_outputs(tmp_path)
    for name in SWEEP:
        write_json(paths.for_variant(name).train_history, _h(NAN))
    with pytest.raises(RegistrationError, match="cannot choose a configuration to register: no"):
        register.best_variant(cfg, paths)
    no_valid = Config(split=SplitCfg(validation=False), sweep=SweepCfg(configs=SWEEP))
    with pytest.raises(RegistrationError, match="split.validation is false"):
        register.best_variant(no_valid, paths)


@pytest.mark.slow
def test_a_sweep_registers_its_validation_winner(tmp_path, monkeypatch) -> None:
    """Issue #12: through report and register with a real (sqlite) MLflow, the configuration
    better on validation and worse on test is the registered model version."""
    from mlflow import MlflowClient

    from negsamp.stages import register, report
    from tests.unit.mlops import world

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    cfg = world.config(SweepCfg(configs={"a": VariantCfg(), "b": VariantCfg()}))
    paths = world.build(tmp_path, world.config(), seed=0)  # shared data, then both models
    tests = {}
    for name, seed, valid in (("a", 0, 0.5), ("b", 1, 0.3)):
        vpaths = paths.for_variant(name)
        write_parquet(vpaths.train_pool, pl.read_parquet(paths.train_pool))
        write_json(vpaths.train_pool_manifest, read_json(paths.train_pool_manifest))
        world.train_model(vpaths, cfg.variant(name), seed, valid=valid)
        tests[name] = read_json(vpaths.metrics)["sampled_ndcg_10"]
    worse_on_test, better_on_test = sorted(tests, key=tests.get)
    # make the validation winner the one that is worse on test, whatever the seeds gave
    for name, valid in ((worse_on_test, 0.5), (better_on_test, 0.3)):
        history = read_json(paths.for_variant(name).train_history)
        for h in history:  # the last epoch is the best, so its weights are the kept ones
            h["valid_sampled_ndcg_10"] = valid - 0.05 * (len(history) - h["epoch"])
        write_json(paths.for_variant(name).train_history, history)
    assert tests[worse_on_test] < tests[better_on_test]
    assert report.run(cfg, paths)["best"] == worse_on_test
    rec = register.run(cfg, paths)
    assert rec["config"] == worse_on_test and rec["alias"] == "champion"
    assert rec["candidates"] == {worse_on_test: 0.5, better_on_test: 0.3}
    client = MlflowClient(uri)
    mv = client.get_model_version_by_alias("negsamp", "champion")
    assert mv.run_id == rec["run_id"] and mv.tags["config"] == worse_on_test
    assert client.get_run(rec["parent_run_id"]).data.tags["best_config"] == worse_on_test
