"""The champion/challenger decision on the same users (issue #7's gate)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from negsamp.champion import RemappedScorer
from negsamp.config import RegistryCfg
from negsamp.promotion import decide


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
