"""Issue #18: the sweep report flags configurations the sampled and full protocols order
oppositely, with both paired tests, and names the registry gate's metric."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from negsamp.sweep import render
from negsamp.sweep.protocols import reversals
from negsamp.sweep.select import Candidate, choose
from negsamp.sweep.table import Comparison, ConfigResult, build

N = 300


def _config(name: str, sampled: np.ndarray, full: np.ndarray) -> ConfigResult:
    """Per-user sampled HR/NDCG = ``sampled``, full Recall/NDCG = ``full`` (0/1 hits)."""
    per_user = pl.DataFrame(
        {
            "user": np.arange(N),
            "sampled_hr_10": sampled.astype(float),
            "sampled_ndcg_10": sampled * 0.5,
            "full_recall_10": full.astype(float),
            "full_ndcg_10": full * 0.4,
        }
    )
    metrics = {c: float(per_user[c].mean()) for c in per_user.columns if c != "user"}
    history = [{"epoch": 0, "loss": 1.0, "seconds": 1.0, "valid_sampled_ndcg_10": 0.5}]
    return ConfigResult(
        name, {"name": "uniform", "n_neg": 4}, "bpr", metrics, {}, per_user, history, {}
    )


def _pair(flip: bool) -> list[ConfigResult]:
    """``uniform`` hits more users on the sampled protocol; ``popularity`` on the full one
    (or also on sampled, when ``flip`` is False: no reversal)."""
    rng = np.random.default_rng(0)
    base = (rng.random(N) < 0.5).astype(int)
    more = base.copy()
    zeros = np.flatnonzero(base == 0)
    more[zeros[:60]] = 1  # 60 extra hits
    uniform = _config("uniform", more, base)
    popularity = _config("popularity", base if flip else more, more)
    return [uniform, popularity]


def _compare(results: list[ConfigResult], metric: str = "sampled_ndcg_10") -> Comparison:
    chosen = choose([Candidate(r.name, "sampled_ndcg_10", True, r.history) for r in results], True)
    return build(results, chosen, metric, True, 10, 1000, 0.95, 7)


def test_issue_18_a_reversed_pair_is_flagged_with_both_paired_tests() -> None:
    c = _compare(_pair(flip=True))
    assert {(r.ahead, r.behind, r.sampled, r.full) for r in c.reversals} == {
        ("uniform", "popularity", "sampled_hr_10", "full_recall_10"),
        ("uniform", "popularity", "sampled_ndcg_10", "full_ndcg_10"),
    }
    for r in c.reversals:
        assert r.sampled_test["diff"] > 0 and r.sampled_test["ci_low"] > 0
        assert r.full_test["diff"] < 0 and r.full_test["ci_high"] < 0
        assert r.supported() and r.sampled_test["n_users"] == N
    md = render.markdown(c, images=[])
    assert "The registry gate uses `sampled_ndcg_10` (the sampled protocol)" in md
    assert "`uniform` beats `popularity` on sampled_hr_10 +0.2000" in md
    assert "loses on full_recall_10 -0.2000" in md
    assert "registry gate uses full_recall_10" in render.to_html(
        _compare(_pair(True), "full_recall_10")
    )
    back = Comparison.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back.reversals == c.reversals


def test_issue_18_agreeing_protocols_flag_nothing() -> None:
    c = _compare(_pair(flip=False))
    assert c.reversals == ()
    assert "none: the two protocols order every pair of configurations alike" in render.markdown(
        c, images=[]
    )


def test_issue_18_reversals_are_seeded_and_skip_missing_metrics() -> None:
    per_user = {r.name: r.per_user for r in _pair(flip=True)}
    assert reversals(per_user, 10, 500, 0.95, 1) == reversals(per_user, 10, 500, 0.95, 1)
    only_hr = {n: f.select("user", "sampled_hr_10", "full_recall_10") for n, f in per_user.items()}
    assert [r.sampled for r in reversals(only_hr, 10, 500, 0.95, 1)] == ["sampled_hr_10"]
