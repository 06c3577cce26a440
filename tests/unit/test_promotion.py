"""The champion/challenger decision on the same users (issue #7's gate)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from negsamp.champion import RemappedScorer
from negsamp.config import RegistryCfg
from negsamp.metrics import report
from negsamp.promotion import compare, decide, decide_catalog


def _frame(values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"user": np.arange(len(values), dtype=np.int32), "sampled_ndcg_10": values})


def test_no_champion_promotes() -> None:
    d = decide(_frame([0.1, 0.2]), None, RegistryCfg(), seed=0)
    assert d.promote and d.reason == "no champion yet" and d.challenger == pytest.approx(0.15)


def test_better_by_the_margin_promotes_and_reports_the_paired_test() -> None:
    rng = np.random.default_rng(0)
    old = rng.random(200)
    d = decide(_frame(list(old + 0.1)), _frame(list(old)), RegistryCfg(margin=0.05), seed=0)
    assert d.promote and d.diff == pytest.approx(0.1) and d.users == 200
    assert d.p_value < 0.01
    assert d.ci_low == pytest.approx(0.1, abs=1e-6) == d.ci_high  # every user gains 0.1


def test_worse_equal_or_below_the_margin_does_not_promote() -> None:
    rng = np.random.default_rng(1)
    old = rng.random(100)
    assert not decide(_frame(list(old - 0.1)), _frame(list(old)), RegistryCfg(), seed=0).promote
    assert not decide(_frame(list(old)), _frame(list(old)), RegistryCfg(), seed=0).promote
    small = decide(_frame(list(old + 0.01)), _frame(list(old)), RegistryCfg(margin=0.05), seed=0)
    assert not small.promote and "not better" in small.reason


def test_significance_can_be_required() -> None:
    rng = np.random.default_rng(2)
    old = rng.random(30)
    noisy = old + rng.normal(0.01, 0.3, 30)  # slightly better on average, very noisy
    cfg = RegistryCfg(require_significance=True)
    d = decide(_frame(list(noisy)), _frame(list(old)), cfg, seed=0)
    assert d.diff > 0 and d.p_value > 0.05 and not d.promote and "not significant" in d.reason


def test_lower_is_better_metrics_flip_the_direction() -> None:
    old = np.linspace(0.2, 0.8, 50)
    cfg = RegistryCfg(greater_is_better=False)
    assert decide(_frame(list(old - 0.1)), _frame(list(old)), cfg, seed=0).promote


def test_remapped_scorer_scores_unknown_users_and_items_minus_infinity() -> None:
    class Dot:
        def __init__(self) -> None:
            self.u = torch.tensor([[1.0], [2.0]])
            self.i = torch.tensor([[1.0], [3.0]])

        def to(self, device: str) -> "Dot":  # noqa: UP037
            return self

        def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return (self.u[users][:, None, :] * self.i[items]).sum(-1)

        def score_all(self, users: torch.Tensor) -> torch.Tensor:
            return self.u[users] @ self.i.T

    champ_users = pl.DataFrame({"dense": [0, 1], "raw": [10, 20]})
    champ_items = pl.DataFrame({"dense": [0, 1], "raw": [100, 300]})
    # today: a new user (30) got id 0 and a new item (200) sits between the old ones
    cur_users = pl.DataFrame(
        {"user": [0, 1, 2], "original": [30, 10, 20]}, schema_overrides={"user": pl.Int32}
    )
    cur_items = pl.DataFrame(
        {"item": [0, 1, 2], "original": [100, 200, 300]}, schema_overrides={"item": pl.Int32}
    )
    s = RemappedScorer.build(Dot(), champ_users, champ_items, cur_users, cur_items)
    inf = float("-inf")
    assert s.score_all(torch.tensor([2, 0])).tolist() == [[2.0, inf, 6.0], [inf, inf, inf]]
    assert s.score(torch.tensor([1]), torch.tensor([[2, 1]])).tolist() == [[3.0, inf]]


def test_the_gate_leaves_nan_users_out_and_says_so() -> None:
    """Issue #12: users 1 and 2 have a NaN in one of the runs; the gate is decided on users
    0 and 3 only (diff 0.4 and 0.6), never on a NaN."""
    new = _frame([0.5, np.nan, 0.9, 0.8])
    old = _frame([0.1, 0.9, np.nan, 0.2])
    d = decide(new, old, RegistryCfg(), seed=0)
    assert d.users == 2 and d.promote
    assert d.challenger == pytest.approx(0.65) and d.champion == pytest.approx(0.15)
    assert d.diff == pytest.approx(0.5) and "over 2 users, 2 left out: NaN" in d.reason
    assert 0.0 < d.p_value <= 1.0 and np.isfinite([d.ci_low, d.ci_high]).all()
    first = decide(_frame([np.nan, 0.2, 0.4]), None, RegistryCfg(), seed=0)
    assert first.promote and first.challenger == pytest.approx(0.3) and first.users == 2


def test_the_gate_refuses_to_decide_on_nan_only() -> None:
    with pytest.raises(ValueError, match="'sampled_ndcg_10' is NaN or missing for all 2 users"):
        decide(_frame([np.nan, np.nan]), None, RegistryCfg(), seed=0)
    with pytest.raises(ValueError, match=r"no user has a value .* \['sampled_ndcg_10'\]"):
        decide(_frame([0.5, np.nan]), _frame([np.nan, 0.5]), RegistryCfg(), seed=0)


# --- the gate's rule for catalog-level metrics, and missing or NaN values (issue #12) ------


def _evaluation(per_user: pl.DataFrame, metrics: dict[str, float]) -> report.Evaluation:
    empty = pl.DataFrame()
    return report.Evaluation(metrics, {}, {}, per_user, empty, {})


@pytest.mark.parametrize(
    ("new", "old", "gib", "margin", "promote"),
    [
        (0.60, 0.50, True, 0.05, True),  # better by more than the margin
        (0.53, 0.50, True, 0.05, False),  # better, but by less than the margin
        (0.50, 0.50, True, 0.0, False),  # a tie keeps the champion
        (0.40, 0.50, False, 0.05, True),  # gini: lower is better
        (0.48, 0.50, False, 0.05, False),
    ],
)
def test_catalog_metrics_compare_one_number_each_with_the_margin(
    new: float, old: float, gib: bool, margin: float, promote: bool
) -> None:
    cfg = RegistryCfg(metric="coverage_10", greater_is_better=gib, margin=margin)
    champion = _evaluation(_frame([0.1, 0.2]), {"coverage_10": old})
    d = compare(None, new, champion, cfg, seed=0)
    assert d.promote is promote and d.champion == old and d.diff == pytest.approx(new - old)
    assert d.p_value is None and "catalog-level" in d.reason


def test_a_catalog_metric_cannot_require_significance() -> None:
    with pytest.raises(ValueError, match="needs a per-user metric"):
        decide_catalog(0.9, 0.1, RegistryCfg(metric="gini_10", require_significance=True))


@pytest.mark.parametrize("old", [None, float("nan")])
def test_a_missing_or_nan_catalog_value_of_the_champion_never_promotes(old: float | None) -> None:
    metrics = {} if old is None else {"coverage_10": old}
    champion = _evaluation(_frame([0.1]), metrics)
    d = compare(None, 0.99, champion, RegistryCfg(metric="coverage_10"), seed=0)
    assert not d.promote and d.reason.startswith("not promoted: the champion's coverage_10")


def test_per_user_values_missing_or_nan_for_the_champion_never_promote() -> None:
    cfg = RegistryCfg()
    new = _frame([0.9, 0.9, 0.9])
    nan = compare(new, 0.9, _evaluation(_frame([0.1, float("nan"), 0.1]), {}), cfg, seed=0)
    assert not nan.promote and "not finite for 1 users" in nan.reason
    none = _evaluation(pl.DataFrame({"user": [0], "other": [0.1]}), {})
    assert not compare(new, 0.9, none, cfg, seed=0).promote
    disjoint = _evaluation(_frame([0.1]).with_columns(pl.col("user") + 10), {})
    assert not compare(new, 0.9, disjoint, cfg, seed=0).promote
    with pytest.raises(ValueError, match="no 'sampled_ndcg_10' column"):
        compare(None, 0.9, _evaluation(_frame([0.1]), {}), cfg, seed=0)


def test_per_user_metrics_go_through_the_paired_test() -> None:
    old = np.linspace(0.1, 0.5, 40)
    champion = _evaluation(_frame(list(old)), {"sampled_ndcg_10": float(old.mean())})
    d = compare(_frame(list(old + 0.1)), float(old.mean() + 0.1), champion, RegistryCfg(), 0)
    assert d.promote and d.p_value is not None and d.users == 40
