"""Contract tests run for every registered data-side sampler: a new plug-in gets them for free."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from negsamp.interactions import Interactions
from negsamp.samplers import SamplingError, build_sampler, no_exclusions, registered
from negsamp.samplers.pool import training_pool
from tests.unit.samplers.helpers import CASES, csr, make_sampler, sampler_cfg

SAMPLERS = CASES


def make(name: str, train: Interactions, **kw: object):  # noqa: ANN201 - a Sampler
    if name.endswith("+unreleased") and kw.get("replace") is False:
        pytest.skip("exclude_unreleased draws with replacement (the config refuses false)")
    return make_sampler(name, train, **kw)


def test_the_data_side_samplers_are_registered() -> None:
    assert registered() == ["popularity", "same_attribute", "stratified", "teacher_hard", "uniform"]


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("name", SAMPLERS)
def test_shape_dtype_and_never_a_positive(name: str, replace: bool, train: Interactions) -> None:
    sampler = make(name, train, replace=replace)
    users = train.rows()
    negs = sampler.sample(train, users, train.indices, 7, np.random.default_rng(3))
    assert negs.shape == (users.size, 7) and negs.dtype == np.int32
    assert ((negs >= 0) & (negs < train.n_items)).all()
    assert not train.contains(users[:, None], negs).any()
    if not replace:
        assert (np.diff(np.sort(negs, axis=1), axis=1) > 0).all()


@pytest.mark.parametrize("name", SAMPLERS)
@settings(max_examples=40, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**32 - 1), n_neg=st.integers(1, 5), replace=st.booleans())
def test_property_never_a_positive_even_with_one_non_positive_left(
    name: str, pos: Interactions, seed: int, n_neg: int, replace: bool
) -> None:
    assume(replace or not name.endswith("+unreleased"))
    users = pos.rows() if pos.nnz else np.arange(pos.n_users)
    need = 1 if replace else n_neg
    rng = np.random.default_rng(seed)
    expect = None
    base = name.removesuffix("+unreleased")
    if base == "popularity" and pos.nnz == 0:  # no counts: no weight anywhere
        expect = "non-zero sampling weight"
    elif int((pos.n_items - pos.user_degrees()[users]).min()) < need:
        expect = "items left to draw from"
    elif base == "popularity":  # items nobody has weigh 0 and can never be drawn
        w = (pos.item_counts() > 0).astype(np.int64)
        held = np.bincount(pos.rows(), weights=w[pos.indices], minlength=pos.n_users)
        if int((w.sum() - held[users]).min()) < need:
            expect = "non-zero sampling weight"
    if expect is not None:
        with pytest.raises(SamplingError, match=expect):
            make(name, pos, replace=replace).sample(pos, users, users, n_neg, rng)
        return
    sampler = make(name, pos, replace=replace)
    negs = sampler.sample(pos, users, users, n_neg, rng)
    assert negs.shape == (users.size, n_neg) and negs.dtype == np.int32
    assert not pos.contains(users[:, None], negs).any()
    if not replace:
        assert (np.diff(np.sort(negs, axis=1), axis=1) > 0).all()


@pytest.mark.parametrize("name", SAMPLERS)
@settings(max_examples=25, deadline=None)
@given(pos=csr(), seed=st.integers(0, 2**32 - 1), replace=st.booleans())
def test_property_a_user_with_no_non_positive_raises_naming_it(
    name: str, pos: Interactions, seed: int, replace: bool
) -> None:
    assume(replace or not name.endswith("+unreleased"))
    full = pos.n_users  # one more user, who has every item
    users = np.concatenate([pos.rows(), np.full(pos.n_items, full)])
    items = np.concatenate([pos.indices, np.arange(pos.n_items)])
    sat = Interactions.from_arrays(users, items, pos.n_users + 1, pos.n_items)
    sampler = make(name, sat, replace=replace)
    rows = np.sort(np.concatenate([np.arange(pos.n_users), [full]]))
    with pytest.raises(SamplingError, match=f"user {full} has 0 of {pos.n_items}"):
        sampler.sample(sat, rows, rows, 1, np.random.default_rng(seed))


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_user_with_no_non_positive_gets_a_clear_error(name: str) -> None:
    pos = Interactions.from_arrays([0, 0, 0, 1], [0, 1, 2, 0], n_users=2, n_items=3)
    sampler = make(name, pos)
    with pytest.raises(SamplingError, match="user 0 has 0 of 3"):
        sampler.sample(pos, np.array([1, 0]), np.array([0, 0]), 2, np.random.default_rng(0))


@pytest.mark.parametrize("name", SAMPLERS)
def test_empty_exclude_is_accepted_and_may_return_positives(name: str) -> None:
    pos = Interactions.from_arrays([0, 0, 0, 1], [0, 1, 2, 0], n_users=2, n_items=4)
    sampler = make(name, pos)
    users = np.repeat([0, 1], 400)
    negs = sampler.sample(no_exclusions(2, 4), users, users, 3, np.random.default_rng(0))
    assert negs.shape == (800, 3)
    assert pos.contains(users[:, None], negs).any()  # user 0 has seen 3 of 4 items


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_seed_same_bytes_other_seed_other_bytes(
    name: str, train: Interactions, tmp_path
) -> None:
    from negsamp.io import md5_file, write_parquet

    def pool(seed: int, path: str) -> str:
        df = training_pool(make(name, train), train, 3, 2, seed)
        write_parquet(tmp_path / path, df)
        return md5_file(tmp_path / path)

    assert pool(7, "a.parquet") == pool(7, "b.parquet")
    assert pool(7, "a.parquet") != pool(8, "c.parquet")


def test_unknown_sampler_lists_the_known_ones(train: Interactions) -> None:
    class Cfg:
        name = "nope"

    with pytest.raises(ValueError, match="known samplers: \\['popularity', 'same_attribute'"):
        build_sampler(Cfg(), train)


def test_batch_side_configs_build_their_base_or_say_they_have_no_pool(train: Interactions) -> None:
    hard = build_sampler(sampler_cfg("hard", base="popularity", alpha=0.5), train)
    assert type(hard).__name__ == "PopularitySampler" and hard.cfg.n_neg == 32
    mixed = build_sampler(sampler_cfg("mixed", n_neg=4, hard_fraction=0.5, candidates=8), train)
    assert type(mixed).__name__ == "UniformSampler" and mixed.cfg.n_neg == 10
    with pytest.raises(ValueError, match="batch-side: it has no pool"):
        build_sampler(sampler_cfg("in_batch"), train)


def test_teacher_hard_needs_a_teacher(train: Interactions) -> None:
    with pytest.raises(ValueError, match="teacher='champion'"):
        build_sampler(sampler_cfg("teacher_hard"), train)


def test_popularity_frequencies_match_count_power_alpha(train: Interactions) -> None:
    sampler = make("popularity", train, alpha=0.75)
    user = int(np.argmax(train.user_degrees()))  # many positives: many rejections
    negs = sampler.sample(train, np.full(200_000, user), None, 1, np.random.default_rng(0))
    target = train.item_counts().astype(float) ** 0.75
    target[train.indices[train.indptr[user] : train.indptr[user + 1]]] = 0
    keep = target > 0
    observed = np.bincount(negs.ravel(), minlength=train.n_items)
    assert observed[~keep].sum() == 0
    expected = target[keep] / target[keep].sum() * negs.size
    assert stats.chisquare(observed[keep], expected).pvalue > 1e-3


def test_stratified_hits_its_band_proportions_and_is_uniform_inside_a_band() -> None:
    rng = np.random.default_rng(0)
    counts = np.arange(200)  # item i is drawn i times (duplicates collapse)
    users = rng.integers(0, 2000, counts.sum())
    items = np.repeat(np.arange(200), counts)
    keep = np.unique(users * 200 + items)
    pos = Interactions.from_arrays(keep // 200, keep % 200, 2000, 200)
    s = make("stratified", pos, bands=[0.2, 0.3, 0.5], band_edges=[0.9, 0.6])
    assert s.size.tolist() == [20, 60, 120]  # head = top 10%, torso next 30%, tail 60%
    u = np.full(150_000, 3)
    negs = s.sample(pos, u, u, 1, np.random.default_rng(1)).ravel()
    band = s.band_of[negs]
    share = np.bincount(band, minlength=3) / negs.size
    assert share == pytest.approx([0.2, 0.3, 0.5], abs=0.006)  # > 4 sigma
    tail = np.setdiff1d(
        s.order[s.start[2] : s.start[2] + s.size[2]], pos.indices[pos.indptr[3] : pos.indptr[4]]
    )
    observed = np.bincount(negs[band == 2], minlength=200)[tail]
    assert stats.chisquare(observed).pvalue > 1e-3
    assert s.describe()["drawn_band_shares"] == pytest.approx([0.2, 0.3, 0.5], abs=0.006)


def test_stratified_falls_back_when_a_band_is_exhausted_and_counts_it() -> None:
    # items 8, 9 are the head (most popular); user 0 has both: its head share moves elsewhere
    items = np.array([8, 9] * 5 + [7, 6, 5])
    users = np.array([0, 0] + [1, 1, 2, 2, 3, 3, 4, 4] + [1, 2, 3])
    pos = Interactions.from_arrays(users, items, 5, 10)
    s = make("stratified", pos, bands=[0.5, 0.5], band_edges=[0.8])
    u = np.zeros(4000, np.int64)
    negs = s.sample(pos, u, u, 1, np.random.default_rng(0))
    assert not np.isin(negs, [8, 9]).any()
    assert s.describe()["band_fallback_cells"] > 1500
