"""Exactness of the vectorized draws: never a positive, right distribution, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negsamp.interactions import Interactions
from negsamp.samplers.exact import (
    SamplingError,
    check_capacity,
    uniform_excluding,
    uniform_ranks_to_items,
    weighted_excluding,
)


@st.composite
def csr(draw: st.DrawFn) -> Interactions:
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(2, 40))
    dense = draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_items, max_size=n_items),
            min_size=n_users,
            max_size=n_users,
        )
    )
    m = np.array(dense, bool)
    m[np.arange(n_users), np.arange(n_users) % n_items] = False  # every user has >= 1 candidate
    u, i = np.nonzero(m)
    return Interactions.from_arrays(u, i, n_users, n_items)


@settings(max_examples=200, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**32 - 1), n_neg=st.integers(1, 8))
def test_uniform_never_returns_a_positive(pos: Interactions, seed: int, n_neg: int) -> None:
    users = np.arange(pos.n_users)
    negs = uniform_excluding(pos, users, n_neg, np.random.default_rng(seed))
    assert negs.shape == (pos.n_users, n_neg) and negs.dtype == np.int32
    assert (negs >= 0).all() and (negs < pos.n_items).all()
    assert not pos.contains(users[:, None], negs).any()


@settings(max_examples=200, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**32 - 1), n_neg=st.integers(1, 8), alpha=st.floats(0, 1))
def test_weighted_never_returns_a_positive(
    pos: Interactions, seed: int, n_neg: int, alpha: float
) -> None:
    users = np.arange(pos.n_users)
    w = np.power(np.arange(1, pos.n_items + 1, dtype=np.float64), alpha)
    negs = weighted_excluding(pos, users, n_neg, w, np.random.default_rng(seed), rejection_rounds=1)
    assert not pos.contains(users[:, None], negs).any()


@settings(max_examples=100, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**32 - 1))
def test_without_replacement_rows_are_distinct(pos: Interactions, seed: int) -> None:
    users = np.arange(pos.n_users)
    n_neg = int((pos.n_items - pos.user_degrees()).min())
    negs = uniform_excluding(pos, users, n_neg, np.random.default_rng(seed), replace=False)
    assert not pos.contains(users[:, None], negs).any()
    assert all(len(set(row)) == n_neg for row in negs.tolist())


def test_rank_mapping_enumerates_the_non_positives_in_order() -> None:
    pos = Interactions.from_arrays([0, 0, 0, 1], [0, 2, 3, 4], n_users=2, n_items=6)
    ranks = np.array([[0, 1, 2], [0, 3, 4]])
    got = uniform_ranks_to_items(pos, np.array([0, 1]), ranks)
    assert got.tolist() == [[1, 4, 5], [0, 3, 5]]


def test_uniform_is_uniform_over_non_positives() -> None:
    pos = Interactions.from_arrays([0, 0], [1, 3], n_users=1, n_items=6)
    negs = uniform_excluding(pos, np.zeros(1), 60_000, np.random.default_rng(0))
    freq = np.bincount(negs.ravel(), minlength=6) / negs.size
    assert freq[[1, 3]].sum() == 0
    assert freq[[0, 2, 4, 5]] == pytest.approx([0.25] * 4, abs=0.01)


def test_weighted_matches_the_restricted_target_even_through_bisection() -> None:
    # user 0 holds the two heaviest items: most draws are rejected and fall back to bisection
    w = np.array([100.0, 50.0, 1.0, 2.0, 3.0])
    pos = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=5)
    negs = weighted_excluding(
        pos, np.zeros(1), 60_000, w, np.random.default_rng(1), rejection_rounds=0
    )
    freq = np.bincount(negs.ravel(), minlength=5) / negs.size
    assert freq == pytest.approx([0, 0, 1 / 6, 2 / 6, 3 / 6], abs=0.01)


def test_user_who_has_seen_every_item_gets_a_clear_error() -> None:
    pos = Interactions.from_arrays([0, 0, 0], [0, 1, 2], n_users=1, n_items=3)
    with pytest.raises(SamplingError, match="user 0 has 0 of 3"):
        check_capacity(pos, np.array([0]), 1, replace=True, what="training pool")


def test_n_neg_larger_than_candidates_without_replacement() -> None:
    pos = Interactions.from_arrays([0], [0], n_users=1, n_items=5)
    with pytest.raises(SamplingError, match="fewer than 10 items"):
        check_capacity(pos, np.array([0]), 10, replace=False, what="evaluation candidates")


def test_weighted_errors_when_no_weight_is_left() -> None:
    w = np.array([1.0, 1.0, 0.0])
    pos = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=3)
    with pytest.raises(SamplingError, match="every item of non-zero sampling weight"):
        weighted_excluding(pos, np.zeros(1), 2, w, np.random.default_rng(0))
