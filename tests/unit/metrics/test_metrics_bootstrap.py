"""Bootstrap CIs over users and the paired test of two runs: sanity and calibration."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from negsamp.metrics import bootstrap as bs


def test_resample_counts_draw_n_users_per_resample() -> None:
    w = bs.resample_counts(7, 5, np.random.default_rng(0))  # users x resamples
    assert w.shape == (7, 5) and w.sum(0).tolist() == [7.0] * 5


def test_ci_is_seeded_and_collapses_on_constant_values() -> None:
    v = np.random.default_rng(1).random((50, 3))
    one = bs.bootstrap_ci(v, 200, 0.95, np.random.default_rng(7))
    two = bs.bootstrap_ci(v, 200, 0.95, np.random.default_rng(7))
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    assert (one[0] < v.mean(0)).all() and (v.mean(0) < one[1]).all()
    low, high = bs.bootstrap_ci(np.full((20, 1), 0.25), 100, 0.95, np.random.default_rng(0))
    assert low.tolist() == pytest.approx([0.25]) and high.tolist() == pytest.approx([0.25])


def test_blocks_give_the_same_draws_as_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    v = np.random.default_rng(2).random((40, 2))
    whole = bs.bootstrap_means(v, 30, np.random.default_rng(3))
    monkeypatch.setattr(bs, "BLOCK_CELLS", 40 * 7)  # blocks of 7 resamples
    assert bs.bootstrap_means(v, 30, np.random.default_rng(3)).shape == (30, 2)
    assert whole.shape == (30, 2)


def test_95_percent_intervals_cover_the_true_mean_about_95_percent_of_the_time() -> None:
    # 400 independent data sets of 200 users, HR-like 0/1 values with mean 0.3, as columns
    values = (np.random.default_rng(4).random((200, 400)) < 0.3).astype(float)
    low, high = bs.bootstrap_ci(values, 1000, 0.95, np.random.default_rng(5))
    coverage = ((low <= 0.3) & (high >= 0.3)).mean()
    assert 0.90 <= coverage <= 0.985


def test_identical_runs_show_no_difference() -> None:
    a = np.random.default_rng(6).random((300, 4))
    res = bs.paired_test(a, a.copy(), 500, 0.95, np.random.default_rng(0))
    assert res["diff"].tolist() == [0.0] * 4
    assert res["ci_low"].tolist() == res["ci_high"].tolist() == [0.0] * 4
    assert res["p_value"].tolist() == [1.0] * 4


def test_a_real_difference_is_found_and_the_null_is_calibrated() -> None:
    rng = np.random.default_rng(7)
    a = rng.random((300, 1))
    res = bs.paired_test(a, a + 0.05 + 0.1 * rng.standard_normal((300, 1)), 2000, 0.95, rng)
    assert res["p_value"][0] < 0.01 and res["ci_low"][0] > 0
    # two runs drawn from the same distribution, 300 metrics: about 5% false alarms
    x, y = (
        (rng.random((200, 300)) < 0.3).astype(float),
        (rng.random((200, 300)) < 0.3).astype(float),
    )
    p = bs.paired_test(x, y, 500, 0.95, np.random.default_rng(8))["p_value"]
    assert 0.01 <= (p < 0.05).mean() <= 0.10


def test_compare_pairs_users_and_checks_metric_names() -> None:
    a = pl.DataFrame(
        {"user": [0, 1, 2, 3], "n_test": [1] * 4, "full_ndcg_10": [1.0, 0.0, 0.5, 0.5]}
    )
    b = pl.DataFrame(
        {"user": [3, 2, 1, 9], "n_test": [1] * 4, "full_ndcg_10": [0.5, 1.0, 0.0, 0.0]}
    )
    out = bs.compare(a, b, n_resamples=200, seed=1)
    row = out.row(0, named=True)
    assert row["metric"] == "full_ndcg_10" and row["n_users"] == 3  # users 1, 2, 3
    assert row["a"] == pytest.approx(1 / 3) and row["b"] == pytest.approx(0.5)
    assert row["diff"] == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="sampled_hr_10"):
        bs.compare(a, b, metrics=["sampled_hr_10"])


def test_paired_test_refuses_nan_and_infinite_values() -> None:
    """Issue #12: a NaN used to give p = 1 / (1 + n_resamples), a 'significant' garbage."""
    a = np.array([[0.5, 1.0], [0.25, 0.0], [1.0, 0.5]])
    b = a.copy()
    b[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"\['hr'\] hold NaN or infinite values for 1 of 3"):
        bs.paired_test(a, b, 100, 0.95, np.random.default_rng(0), names=["ndcg", "hr"])
    b[1, 1] = np.inf
    with pytest.raises(ValueError, match="column 1"):
        bs.paired_test(a, b, 100, 0.95, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no users"):
        bs.paired_test(a[:0], a[:0], 100, 0.95, np.random.default_rng(0))


def test_compare_leaves_a_nan_user_out_of_that_metric_only() -> None:
    """Issue #12: user 3 has no ``m1`` in A (NaN), user 2 no ``m2`` in B (null); each is
    left out of that metric's test only, and each metric reports the users it used."""
    a = pl.DataFrame(
        {"user": [0, 1, 2, 3], "m1": [1.0, 0.0, 0.5, np.nan], "m2": [0.0, 1.0, 1.0, 1.0]}
    )
    b = pl.DataFrame(
        {"user": [0, 1, 2, 3], "m1": [1.0, 1.0, 0.5, 0.0], "m2": [1.0, 1.0, None, 0.0]}
    )
    out = bs.compare(a, b, n_resamples=200, seed=1)
    m1, m2 = out.rows(named=True)
    assert m1["metric"] == "m1" and m1["n_users"] == 3  # users 0, 1, 2
    assert m1["a"] == pytest.approx(0.5) and m1["b"] == pytest.approx(2.5 / 3)
    assert m1["diff"] == pytest.approx(1 / 3)
    assert m1["p_value"] == 1.0  # differences 0, 1, 0: every sign flip is as extreme
    assert m2["metric"] == "m2" and m2["n_users"] == 3  # users 0, 1, 3
    assert m2["a"] == pytest.approx(2 / 3) and m2["b"] == pytest.approx(2 / 3)
    assert m2["diff"] == pytest.approx(0.0) and m2["p_value"] == 1.0
    assert 0.0 <= m1["ci_low"] <= m1["ci_high"] <= 1.0
    assert out["n_users"].dtype == pl.Int64


def test_compare_names_a_metric_no_user_is_left_for() -> None:
    a = pl.DataFrame({"user": [0, 1], "m1": [1.0, 0.0], "m2": [np.nan, 0.5]})
    b = pl.DataFrame({"user": [0, 1], "m1": [0.0, 0.0], "m2": [0.5, None]})
    with pytest.raises(ValueError, match=r"no user has a value .* for \['m2'\]"):
        bs.compare(a, b, n_resamples=100)


def test_compare_without_nan_is_one_paired_test() -> None:
    rng = np.random.default_rng(9)
    va, vb = rng.random((30, 2)), rng.random((30, 2))
    a = pl.DataFrame({"user": np.arange(30), "x": va[:, 0], "y": va[:, 1]})
    b = pl.DataFrame({"user": np.arange(30), "x": vb[:, 0], "y": vb[:, 1]})
    out = bs.compare(a, b, n_resamples=300, seed=4)
    va, vb = a.select("x", "y").to_numpy(), b.select("x", "y").to_numpy()
    want = bs.paired_test(va, vb, 300, 0.95, np.random.default_rng(4))
    for key in ("diff", "ci_low", "ci_high", "p_value"):
        assert out[key].to_numpy().tolist() == want[key].tolist()
    assert out["n_users"].to_list() == [30, 30]
