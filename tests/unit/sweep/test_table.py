"""The sweep comparison: rows in the order of the choice on validation (issue #12), paired
tests on test against the chosen configuration, renderings, plots, grids."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from negsamp.sweep import grid, plots, render
from negsamp.sweep.select import Candidate, choose
from negsamp.sweep.table import Comparison, ConfigResult, build, sampler_label

N_USERS = 200


def _result(
    name: str, hits: np.ndarray, sampler: dict | None = None, valid: float = 0.5, **kw
) -> ConfigResult:
    """A configuration whose per-user test sampled_ndcg_10 is ``hits`` (0/1 per user) and
    whose kept validation value is ``valid``."""
    ndcg = hits.astype(float)
    metrics = {
        "sampled_hr_10": float(ndcg.mean()),
        "sampled_ndcg_10": float(ndcg.mean()),
        "full_recall_10": float(ndcg.mean()) / 2,
        "full_ndcg_10": float(ndcg.mean()) / 3,
        "arp_10": 50.0 + 10 * float(ndcg.mean()),
        "longtail_10": 0.1,
    }
    ci = {k: {"ci_low": v - 0.01, "ci_high": v + 0.01} for k, v in metrics.items()}
    return ConfigResult(
        name=name,
        sampler=sampler or {"name": "uniform", "n_neg": 4},
        model="bpr",
        metrics=metrics,
        ci=ci,
        per_user=pl.DataFrame({"user": np.arange(N_USERS), "sampled_ndcg_10": ndcg}),
        history=kw.get(
            "history",
            [
                {"epoch": 0, "loss": 2.0, "seconds": 1.0, "valid_sampled_ndcg_10": valid - 0.1},
                {
                    "epoch": 1,
                    "loss": 1.0,
                    "seconds": 1.0,
                    "pairs_per_second": 200.0,
                    "valid_sampled_ndcg_10": valid,
                },
            ],  # fmt: skip
        ),
        manifest=kw.get("manifest", {"timing": {"seconds": 0.5, "negatives_per_second": 1e6}}),
    )


def _three(weak_valid: float = 0.3) -> list[ConfigResult]:
    rng = np.random.default_rng(0)
    strong = (rng.random(N_USERS) < 0.8).astype(int)
    weak = strong.copy()
    weak[:60] = 0  # the same users, 60 fewer hits: clearly worse on test, paired
    return [
        _result("weak", weak, {"name": "popularity", "n_neg": 16, "alpha": 0.5}, weak_valid),
        _result("strong", strong),
        _result("same", strong.copy(), {"name": "in_batch"}),
    ]


def _build(results: list[ConfigResult], gib: bool = True) -> Comparison:
    chosen = choose([Candidate(r.name, "sampled_ndcg_10", True, r.history) for r in results], True)
    return build(results, chosen, "sampled_ndcg_10", gib, 10, 2000, 0.95, 42)


def test_a_nan_user_is_left_out_of_the_paired_test_against_the_best() -> None:
    """Issue #12: per-user NaN no longer feeds the paired test; n_users says who was used."""

    def four(name: str, values: list[float]) -> ConfigResult:
        per_user = pl.DataFrame({"user": np.arange(4), "sampled_ndcg_10": values})
        return replace(_result(name, np.ones(N_USERS, int)), per_user=per_user)

    best, other = four("best", [1.0, 1.0, 1.0, 1.0]), four("other", [1.0, np.nan, 0.0, 1.0])
    row = _build([best, other]).rows[1]
    assert row.config == "other"  # the tie on validation is broken by name
    assert row.vs_best["n_users"] == 3 and row.vs_best["diff"] == pytest.approx(-1 / 3)
    assert row.vs_best["p_value"] == 1.0  # differences 0, -1, 0: every sign flip as extreme


def test_rows_follow_the_validation_choice_and_are_tested_against_it_on_test() -> None:
    results = _three()
    c = _build(results)
    assert [r.config for r in c.rows] == ["same", "strong", "weak"]  # ties broken by name
    assert c.best.config == "same" and c.best.best and c.best.vs_best is None
    assert [r.valid for r in c.rows] == pytest.approx([0.5, 0.5, 0.3])
    assert (c.monitor, c.chosen_on) == ("sampled_ndcg_10", "valid")
    strong, weak = c.rows[1], c.rows[2]
    assert strong.vs_best["diff"] == 0.0 and strong.vs_best["p_value"] == 1.0
    lost = results[0].per_user["sampled_ndcg_10"].to_numpy()
    best = results[2].per_user["sampled_ndcg_10"].to_numpy()
    assert weak.vs_best["diff"] == pytest.approx((lost - best).mean())
    assert weak.vs_best["ci_high"] < 0 and weak.vs_best["p_value"] < 0.01
    assert weak.sampler == "popularity a=0.5" and weak.n_neg == 16
    assert c.best.n_neg is None  # in_batch: the batch decides
    assert weak.train_seconds == 2.0 and weak.train_pairs_per_second == 100.0
    assert weak.epochs == 2
    assert (
        weak.negatives_per_second == 1e6
        and weak.ci["sampled_hr_10"][0] < weak.values["sampled_hr_10"]
    )
    # deterministic: the same inputs give the same table
    assert _build(_three()).to_dict() == c.to_dict()
    # the test metric's direction does not choose: only the paired test reads it
    assert _build(results, gib=False).best.config == "same"


def test_the_validation_winner_heads_the_table_even_when_it_loses_on_test() -> None:
    """Issue #12: the test split only reports; the chosen row can be the worst on test."""
    c = _build(_three(weak_valid=0.9))
    assert [r.config for r in c.rows] == ["weak", "same", "strong"]
    assert c.best.config == "weak" and c.to_dict()["best"] == "weak"
    assert all(r.vs_best["diff"] > 0 and r.vs_best["p_value"] < 0.01 for r in c.rows[1:])
    assert c.to_dict()["choice"] == (
        "chosen on validation: sampled_ndcg_10 (valid); test metrics report only"
    )


def test_bad_inputs_are_refused_with_the_configuration_named() -> None:
    results = _three()
    broken = ConfigResult(**{**results[0].__dict__, "metrics": {"sampled_hr_10": 0.5}})
    with pytest.raises(ValueError, match="'weak' has no finite 'sampled_ndcg_10'"):
        _build([broken, results[1]])
    fewer = ConfigResult(**{**results[0].__dict__, "per_user": results[0].per_user.head(10)})
    with pytest.raises(ValueError, match="different users"):
        _build([fewer, results[1]])
    with pytest.raises(ValueError, match="nothing to"):
        _build([])
    other = choose([Candidate("x", "sampled_ndcg_10", True, [])], True)
    with pytest.raises(ValueError, match=r"choice is of \['x'\]"):
        build(results, other, "sampled_ndcg_10", True, 10, 100, 0.95, 0)


def test_renderings_hold_every_configuration_and_round_trip() -> None:
    c = _build(_three())
    md = render.markdown(c)
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert len(lines) == 1 + 3 and all(name in md for name in ("same", "strong", "weak"))
    assert "| chosen |" in md and "p=" in md and "1e+06/s" not in md and "1M/s" in md
    assert "chosen on validation: sampled_ndcg_10 (valid); test metrics report only" in md
    assert "| valid sampled_ndcg_10 |" in md and "| 0.5000 |" in md and "| 0.3000 |" in md
    page = render.to_html(c, "a <sweep>")
    assert "&lt;sweep&gt;" in page and page.count("<tr") == 4 and "by_sampler.png" in page
    assert "chosen on validation: sampled_ndcg_10 (valid)" in page
    png = b"\x89PNG\r\n\x1a\nfake"
    embedded = render.to_html(c, "t", {"by_sampler.png": png})  # shows in MLflow's viewer
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in embedded
    assert "n_neg.png" not in embedded  # an image not drawn is not linked
    again = Comparison.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c


def test_a_comparison_written_before_issue_12_still_reads() -> None:
    """comparison.json from before the choice moved to validation: no monitor, no values."""
    d = _build(_three()).to_dict()
    for key in ("monitor", "chosen_on", "choice"):
        del d[key]
    for r in d["rows"]:
        del r["valid"]
    old = Comparison.from_dict(d)
    assert old.chosen_on == "test" and all(r.valid is None for r in old.rows)
    assert old.choice.startswith("chosen on test: sampled_ndcg_10")
    md = render.markdown(old)
    assert "| valid |" in md and "Rows are ranked" not in md


def test_a_configuration_without_a_validation_value_is_listed_last_and_said_so() -> None:
    results = _three()
    no_valid = ConfigResult(**{**results[1].__dict__, "history": [{"epoch": 0, "loss": 1.0}]})
    c = _build([results[0], no_valid, results[2]])
    assert [(r.config, r.valid) for r in c.rows] == [("same", 0.5), ("weak", 0.3), ("strong", None)]
    assert "No finite validation value, so not chosen: `strong`." in render.markdown(c)


def test_every_plot_is_a_png() -> None:
    import polars as pl

    c = _build(_three())
    curves = {
        r.config: pl.DataFrame(
            {"k": [1, 5, 10], "full_ndcg": [0.1, 0.2, 0.3], "sampled_hr": [0.2, 0.5, 0.7]}
        )
        for r in c.rows
    }
    bands = {
        r.config: pl.DataFrame({"band": ["head", "torso", "tail"], "full_ndcg": [0.5, 0.2, 0.05]})
        for r in c.rows
    }
    out = plots.all_plots(c, curves, bands)
    assert set(out) == set(render.PLOTS)
    assert set(plots.all_plots(c)) == set(render.PLOTS) - {"at_k.png", "by_popularity.png"}
    assert all(png.startswith(b"\x89PNG") and len(png) > 5000 for png in out.values())


def test_sampler_labels() -> None:
    assert sampler_label({"name": "hard", "k": 2}) == "hard k=2"
    assert sampler_label({"name": "mixed", "hard_fraction": 0.25}) == "mixed h=0.25"
    assert sampler_label({"name": "stratified", "n_neg": 4}) == "stratified"


def test_grid_crosses_every_configuration() -> None:
    g = grid.parse(["sampler.n_neg=1,4", "model.name=bpr,lmf"])
    assert g == {"sampler.n_neg": [1, 4], "model.name": ["bpr", "lmf"]}
    out = grid.expand({"u": {}, "p": {"sampler": {"name": "popularity", "n_neg": 8}}}, g)
    assert list(out) == [
        "u-n_neg1-bpr", "u-n_neg1-lmf", "u-n_neg4-bpr", "u-n_neg4-lmf",
        "p-n_neg1-bpr", "p-n_neg1-lmf", "p-n_neg4-bpr", "p-n_neg4-lmf",
    ]  # fmt: skip
    assert out["p-n_neg4-lmf"] == {
        "sampler": {"name": "popularity", "n_neg": 4},
        "model": {"name": "lmf"},
    }
    assert grid.expand({"u": {}}, {}) == {"u": {}}
    for bad, msg in (
        ("sampler.n_neg", "KEY=V1"),
        ("base.seed=1,2", "grid key"),
        ("sampler.n_neg=1,1", "repeated"),
    ):
        with pytest.raises(ValueError, match=msg):
            grid.parse([bad])


def test_calibration_and_probe_columns_and_the_new_sampler_labels() -> None:
    results = _three()
    extra = {"ece": 0.128, "ece_corrected": 0.003, "probe_genre_f1": 0.296}
    extra |= {"probe_genre_f1_random": 0.135, "probe_genre_f1_popularity": 0.177}
    results[1] = replace(results[1], metrics=results[1].metrics | extra)
    md = render.markdown(_build(results))
    assert "| ECE / corrected | probe genre F1 (random, pop.) |" in md
    assert "| 0.128 / 0.003 | 0.296 (0.135, 0.177) |" in md and "| - | - |" in md
    assert "Probe F1: macro-F1" in md
    s = {"name": "mixed", "hard_fraction": 0.5, "schedule": "linear", "hard_fraction_start": 0}
    assert sampler_label(s) == "mixed h=0.5 linear from 0"
    s = {"name": "uniform", "exclude_unreleased": True}
    assert sampler_label(s) == "uniform unreleased excluded"
    assert sampler_label({"name": "stratified", "by": "attribute", "family": "genre"}) == (
        "stratified genre"
    )
