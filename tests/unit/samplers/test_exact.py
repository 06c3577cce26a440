"""Exactness of the vectorized draws: never a positive, right distribution, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from negsamp.interactions import Interactions
from negsamp.samplers import exact
from negsamp.samplers._local import LocalPositives
from negsamp.samplers.cdf import DiscreteTable
from negsamp.samplers.exact import (
    SamplingError,
    check_capacity,
    no_exclusions,
    uniform_excluding,
    uniform_ranks_to_items,
    weighted_excluding,
)
from tests.unit.samplers.helpers import csr


@settings(max_examples=150, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**32 - 1), n_neg=st.integers(1, 8), replace=st.booleans())
def test_uniform_never_returns_a_positive(
    pos: Interactions, seed: int, n_neg: int, replace: bool
) -> None:
    users = np.arange(pos.n_users)
    if not replace:
        n_neg = min(n_neg, int((pos.n_items - pos.user_degrees()).min()))
    negs = uniform_excluding(pos, users, n_neg, np.random.default_rng(seed), replace=replace)
    assert negs.shape == (pos.n_users, n_neg) and negs.dtype == np.int32
    assert (negs >= 0).all() and (negs < pos.n_items).all()
    assert not pos.contains(users[:, None], negs).any()
    if not replace:
        assert all(len(set(row)) == n_neg for row in negs.tolist())


@settings(max_examples=150, deadline=None)
@given(
    pos=csr(),
    seed=st.integers(0, 2**32 - 1),
    n_neg=st.integers(1, 8),
    alpha=st.floats(0, 1),
    rounds=st.integers(0, 2),
    replace=st.booleans(),
)
def test_weighted_never_returns_a_positive(
    pos: Interactions, seed: int, n_neg: int, alpha: float, rounds: int, replace: bool
) -> None:
    users = np.arange(pos.n_users)
    if not replace:
        n_neg = min(n_neg, int((pos.n_items - pos.user_degrees()).min()))
    w = np.power(np.arange(1, pos.n_items + 1, dtype=np.float64), alpha)
    rng = np.random.default_rng(seed)
    negs = weighted_excluding(pos, users, n_neg, w, rng, rejection_rounds=rounds, replace=replace)
    assert not pos.contains(users[:, None], negs).any()
    if not replace:
        assert all(len(set(row)) == n_neg for row in negs.tolist())


def test_rank_mapping_enumerates_the_non_positives_in_order() -> None:
    pos = Interactions.from_arrays([0, 0, 0, 1], [0, 2, 3, 4], n_users=2, n_items=6)
    ranks = np.array([[0, 1, 2], [0, 3, 4]])
    got = uniform_ranks_to_items(pos, np.array([0, 1]), ranks)
    assert got.tolist() == [[1, 4, 5], [0, 3, 5]]


def test_select_also_skips_the_taken_items() -> None:
    # non-positives of user 0: 1 4 5 6 7; with 4 and 6 taken: 1 5 7
    pos = Interactions.from_arrays([0, 0, 0], [0, 2, 3], n_users=1, n_items=8)
    local = LocalPositives(pos, np.zeros(3, np.int64))
    taken = np.array([[6, 4]] * 3)
    assert local.select(local.lu, np.array([0, 1, 2]), taken).tolist() == [1, 5, 7]


def test_uniform_is_uniform_over_non_positives() -> None:
    pos = Interactions.from_arrays([0, 0], [1, 3], n_users=1, n_items=6)
    negs = uniform_excluding(pos, np.zeros(1), 60_000, np.random.default_rng(0))
    freq = np.bincount(negs.ravel(), minlength=6) / negs.size
    assert freq[[1, 3]].sum() == 0
    assert freq[[0, 2, 4, 5]] == pytest.approx([0.25] * 4, abs=0.01)


# both routes of a dense user: its complement table (the default) and rejection + fallback
ROUTES = pytest.mark.parametrize("dense_at", [exact.DENSE_AT, 2.0], ids=["direct", "rejection"])


@ROUTES
def test_uniform_exact_fallback_is_uniform_too(
    monkeypatch: pytest.MonkeyPatch, dense_at: float
) -> None:
    # rounds=0 in spirit: a user who holds 7 of 10 items rejects most proposals
    monkeypatch.setattr(exact, "DENSE_AT", dense_at)
    pos = Interactions.from_arrays([0] * 7, [0, 1, 2, 4, 5, 6, 8], n_users=1, n_items=10)
    negs = uniform_excluding(pos, np.zeros(20_000, np.int64), 1, np.random.default_rng(1))
    counts = np.bincount(negs.ravel(), minlength=10)[[3, 7, 9]]
    assert stats.chisquare(counts).pvalue > 1e-3


@ROUTES
def test_weighted_matches_the_restricted_target_even_through_bisection(
    monkeypatch: pytest.MonkeyPatch, dense_at: float
) -> None:
    # user 0 holds the two heaviest items: with no redraw round every hit goes to bisection
    monkeypatch.setattr(exact, "DENSE_AT", dense_at)
    w = np.array([100.0, 50.0, 1.0, 2.0, 3.0])
    pos = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=5)
    negs = weighted_excluding(
        pos, np.zeros(1), 60_000, w, np.random.default_rng(1), rejection_rounds=0
    )
    freq = np.bincount(negs.ravel(), minlength=5) / negs.size
    assert freq == pytest.approx([0, 0, 1 / 6, 2 / 6, 3 / 6], abs=0.01)


def test_weighted_without_replacement_is_successive_sampling() -> None:
    # P(first = i) = w_i / 6; P(second = j | first = i) = w_j / (6 - w_i)
    w = np.array([1.0, 2.0, 3.0])
    pos = no_exclusions(1, 3)
    negs = weighted_excluding(
        pos, np.zeros(60_000, np.int64), 2, w, np.random.default_rng(2), replace=False
    )
    pairs = np.bincount(negs[:, 0] * 3 + negs[:, 1], minlength=9) / negs.shape[0]
    expected = np.array(
        [w[i] / 6 * w[j] / (6 - w[i]) if i != j else 0 for i in range(3) for j in range(3)]
    )
    assert pairs == pytest.approx(expected, abs=0.01)


def test_empty_exclude_may_return_anything() -> None:
    pos = no_exclusions(3, 4)
    negs = uniform_excluding(pos, np.array([0, 1, 2]), 500, np.random.default_rng(0))
    assert set(np.unique(negs).tolist()) == {0, 1, 2, 3}


def test_user_who_has_seen_every_item_gets_a_clear_error() -> None:
    pos = Interactions.from_arrays([0, 0, 0], [0, 1, 2], n_users=1, n_items=3)
    with pytest.raises(SamplingError, match="user 0 has 0 of 3"):
        check_capacity(pos, np.array([0]), 1, replace=True, what="training pool")
    with pytest.raises(SamplingError, match="user 0 has 0 of 3"):
        uniform_excluding(pos, np.array([0]), 1, np.random.default_rng(0))


def test_n_neg_larger_than_candidates_without_replacement() -> None:
    pos = Interactions.from_arrays([0], [0], n_users=1, n_items=5)
    with pytest.raises(SamplingError, match="n_neg=10 but user 0 has 4 of 5"):
        uniform_excluding(pos, np.array([0]), 10, np.random.default_rng(0), replace=False)


def test_weighted_errors_when_no_weight_is_left() -> None:
    w = np.array([1.0, 1.0, 0.0])
    pos = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=3)
    with pytest.raises(SamplingError, match="no item of non-zero sampling weight"):
        weighted_excluding(pos, np.zeros(1), 2, w, np.random.default_rng(0))


def test_weighted_without_replacement_errors_when_the_row_runs_out_of_weight() -> None:
    w = np.array([1.0, 1.0, 0.0, 5.0])
    pos = Interactions.from_arrays([0], [3], n_users=1, n_items=4)
    with pytest.raises(SamplingError, match="or already in the row"):
        weighted_excluding(pos, np.zeros(1), 3, w, np.random.default_rng(0), replace=False)


@pytest.mark.parametrize(
    "w",
    [
        np.ones(1000),
        1 / np.arange(1, 5001) ** 0.75,
        np.repeat([100.0, 10.0, 1.0, 0.0, 1.0], 400),
        np.array([0.0, 3.0, 0.0, 1.0, 0.0]),
        np.random.default_rng(3).pareto(1.0, 3000),
    ],
    ids=["uniform", "zipf", "ties-and-zeros", "tiny", "pareto"],
)
def test_guide_table_equals_searchsorted_exactly(w: np.ndarray) -> None:
    table = DiscreteTable(w)
    f = np.random.default_rng(0).random(200_000)
    f[:2] = [0.0, np.nextafter(1.0, 0.0)]
    got = table.from_uniform(f)
    last = int(np.flatnonzero(w > 0)[-1])
    want = np.minimum(np.searchsorted(table.cum, f * table.total, side="right") - 1, last)
    assert np.array_equal(got, want)
    assert (w[got] > 0).all()


def test_membership_is_right_in_every_tier_and_after_the_workspace_moves_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import negsamp.samplers._local as lp

    rng = np.random.default_rng(0)
    pos = Interactions.from_arrays(rng.integers(0, 60, 900), rng.integers(0, 50, 900), 60, 50)
    users = np.sort(rng.integers(0, 60, 300))
    items = rng.integers(0, 50, (300, 6))
    want = pos.contains(users[:, None], items)
    first = LocalPositives(pos, users)  # takes the thread's mask workspace
    other = LocalPositives(pos, np.arange(40, 60))  # ... which this one then takes over
    assert np.array_equal(
        other.hit_rows(None, items[:20]), pos.contains(np.arange(40, 60)[:, None], items[:20])
    )
    assert np.array_equal(first.hit_rows(None, items), want)  # rebuilt its own bitmap
    # the flat hit indices the first draw uses (byte gather, then the bit where it is set)
    assert np.array_equal(LocalPositives(pos, users).hit_index(items), np.flatnonzero(want))
    local = LocalPositives(pos, users)
    assert np.array_equal(local.hit(local.lu[:, None], items), want)
    monkeypatch.setattr(lp, "MAX_MASK_CELLS", 0)  # packed bitmap tier
    assert np.array_equal(LocalPositives(pos, users).hit_rows(None, items), want)
    assert np.array_equal(LocalPositives(pos, users).hit_index(items), np.flatnonzero(want))
    first = LocalPositives(pos, users)  # ... and its own copy once the workspace moves on
    LocalPositives(pos, np.arange(40, 60))
    assert np.array_equal(first.hit_rows(None, items), want)
    monkeypatch.setattr(lp, "MAX_BITMAP_BITS", 0)  # searchsorted tier
    assert np.array_equal(LocalPositives(pos, users).hit_rows(None, items), want)
    assert np.array_equal(LocalPositives(pos, users).hit_index(items), np.flatnonzero(want))
    negs = uniform_excluding(pos, users, 6, np.random.default_rng(1))
    assert not pos.contains(users[:, None], negs).any()


def _dense_and_sparse(n_users: int = 300, n_items: int = 40, seed: int = 0) -> Interactions:
    """Users 0..99 hold 70% of the catalog (the direct route), the rest 10% (rejection)."""
    rng = np.random.default_rng(seed)
    deg = np.where(np.arange(n_users) < 100, int(0.7 * n_items), int(0.1 * n_items))
    users = np.repeat(np.arange(n_users), deg)
    items = np.concatenate([rng.choice(n_items, d, replace=False) for d in deg])  # test data
    return Interactions.from_arrays(users, items, n_users, n_items)


def test_dense_users_are_drawn_without_rejection_by_rank_mapping_over_their_complement() -> None:
    """Exactness (#17): the direct route's item is the floor(U * available)-th non-positive
    of the user, as the rank-mapping helper enumerates them, for the same uniforms U."""
    pos = _dense_and_sparse()
    users = pos.rows().astype(np.int64)
    dense = np.flatnonzero(pos.user_degrees()[users] >= exact.DENSE_AT * pos.n_items)
    local = LocalPositives(pos, users)
    got = exact.UniformProposal(pos.n_items).direct(np.random.default_rng(5), local, dense, 4)
    u = np.random.default_rng(5).random((dense.size, 4))
    ranks = (u * exact.available(pos, users[dense])[:, None]).astype(np.int64)
    assert got.tolist() == uniform_ranks_to_items(pos, users[dense], ranks).tolist()


def test_the_direct_route_is_taken_counted_and_never_returns_a_positive() -> None:
    pos = _dense_and_sparse()
    users = pos.rows().astype(np.int64)
    st = exact.DrawStats()
    negs = uniform_excluding(pos, users, 4, np.random.default_rng(0), stats=st)
    dense_rows = int((pos.user_degrees()[users] >= exact.DENSE_AT * pos.n_items).sum())
    assert dense_rows and st.direct == 4 * dense_rows
    assert not pos.contains(users[:, None], negs).any()


@pytest.mark.parametrize("kind", ["uniform", "popularity"])
def test_the_direct_route_matches_the_restricted_target_chi_square(kind: str) -> None:
    """One dense user drawn many times: its items' counts against the target restricted to
    its non-positives (uniform, or w_i / sum of its non-positives' w)."""
    n_items = 30
    held = np.array([0, 2, 3, 5, 7, 8, 11, 13, 14, 17, 19, 20, 23, 25, 26, 28, 29, 1, 4])
    pos = Interactions.from_arrays(np.zeros(held.size, np.int64), held, 1, n_items)
    users = np.zeros(40_000, np.int64)
    w = np.arange(1.0, n_items + 1) ** 0.75
    st = exact.DrawStats()
    rng = np.random.default_rng(3)
    if kind == "uniform":
        negs = uniform_excluding(pos, users, 2, rng, stats=st)
        target = np.ones(n_items)
    else:
        negs = weighted_excluding(pos, users, 2, w, rng, stats=st)
        target = w.copy()
    assert st.direct == negs.size  # 19 of 30 held: every draw took the direct route
    free = np.setdiff1d(np.arange(n_items), held)
    counts = np.bincount(negs.ravel(), minlength=n_items)
    assert counts[held].sum() == 0
    expected = target[free] / target[free].sum() * negs.size
    assert stats.chisquare(counts[free], expected).pvalue > 1e-3


@pytest.mark.parametrize("weighted", [False, True])
def test_same_seed_and_version_same_bytes_through_both_routes(weighted: bool) -> None:
    pos = _dense_and_sparse()
    users = pos.rows().astype(np.int64)
    w = np.arange(1.0, pos.n_items + 1)

    def draw(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        if weighted:
            return weighted_excluding(pos, users, 4, w, rng).tobytes()
        return uniform_excluding(pos, users, 4, rng).tobytes()

    assert exact.ALGORITHM == 2  # the version the pool manifest records (sample_negatives)
    assert draw(7) == draw(7) and draw(7) != draw(8)
