"""Distribution tests of the attribute-aware samplers: same_attribute and stratified by attribute."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from negsamp.interactions import Interactions
from negsamp.samplers import SamplingError, build_sampler
from tests.unit.samplers.helpers import sampler_cfg


def _attrs(values: dict[int, list[str]], family: str = "genre") -> pl.DataFrame:
    rows = [(i, family, v) for i, vs in values.items() for v in vs]
    return pl.DataFrame(
        rows, schema={"item": pl.Int32, "family": pl.String, "value": pl.String}, orient="row"
    )


# 60 items: A = 0..29, B = 20..49 (20..29 carry both), 50..59 carry nothing
ATTRS = _attrs(
    {i: ([*(["A"] if i < 30 else []), *(["B"] if 20 <= i < 50 else [])]) for i in range(60)}
)


def _expected(pos: Interactions, user: int, pos_item_values: list[str]) -> np.ndarray:
    """P(i): one of the positive's values uniformly, then uniform over the user's
    non-positives carrying it."""
    seen = set(pos.indices[pos.indptr[user] : pos.indptr[user + 1]].tolist())
    members = {"A": set(range(30)), "B": set(range(20, 50))}
    p = np.zeros(pos.n_items)
    for v in pos_item_values:
        free = sorted(members[v] - seen)
        p[free] += 1 / len(pos_item_values) / len(free)
    return p


@pytest.mark.parametrize("replace", [True, False])
def test_same_attribute_draws_only_shared_values_in_proportion(replace: bool) -> None:
    # user 0 has items 0..24 (most of A: rejection often fails, the exact step finishes)
    # and 25 (carries A and B, the positive we draw for)
    pos = Interactions.from_arrays(np.zeros(26, int), np.arange(26), n_users=1, n_items=60)
    s = build_sampler(sampler_cfg("same_attribute", replace=replace), pos, attributes=ATTRS)
    n = 40_000 if replace else 20_000
    k = 1 if replace else 2
    negs = s.sample(pos, np.zeros(n, int), np.full(n, 25), k, np.random.default_rng(0))
    assert not np.isin(negs, np.arange(26)).any() and (negs < 50).all()
    if not replace:
        assert (negs[:, 0] != negs[:, 1]).all()
    observed = np.bincount(negs[:, 0], minlength=60)
    p = _expected(pos, 0, ["A", "B"])
    keep = p > 0
    assert observed[~keep].sum() == 0
    assert stats.chisquare(observed[keep], p[keep] * n).pvalue > 1e-3
    if replace:
        assert s.stats.exact > 0  # the exact rank mapping ran and kept the distribution
    assert s.describe()["fallback_share"] == 0.0


def test_same_attribute_falls_back_to_uniform_and_reports_the_share() -> None:
    # positive 55 has no value; positive 3 has A, which user 1 holds entirely
    users = np.concatenate([[0, 0], np.ones(30, int)])
    items = np.concatenate([[55, 3], np.arange(30)])
    pos = Interactions.from_arrays(users, items, n_users=2, n_items=60)
    s = build_sampler(sampler_cfg("same_attribute"), pos, attributes=ATTRS)
    rows_u = np.repeat([0, 1], 10_000)
    rows_p = np.concatenate([np.full(10_000, 55), np.full(10_000, 3)])
    negs = s.sample(pos, rows_u, rows_p, 1, np.random.default_rng(1)).ravel()
    assert not pos.contains(rows_u, negs).any()
    for u, lo in ((0, 0), (1, 10_000)):  # uniform over each user's non-positives
        got = np.bincount(negs[lo : lo + 10_000], minlength=60)
        free = np.setdiff1d(np.arange(60), pos.indices[pos.indptr[u] : pos.indptr[u + 1]])
        assert got.sum() == got[free].sum()
        assert stats.chisquare(got[free]).pvalue > 1e-3
    assert s.describe()["fallback_share"] == 1.0


def test_same_attribute_needs_the_family() -> None:
    pos = Interactions.from_arrays([0], [1], n_users=1, n_items=60)
    with pytest.raises(
        SamplingError, match=r"family 'mood' is not in the item features \(families: \['genre'\]\)"
    ):
        build_sampler(sampler_cfg("same_attribute", family="mood"), pos, attributes=ATTRS)
    with pytest.raises(SamplingError, match="set data.item_features"):
        build_sampler(sampler_cfg("same_attribute"), pos, attributes=None)


def test_stratified_by_attribute_hits_its_shares() -> None:
    pos = Interactions.from_arrays([0, 0], [1, 30], n_users=1, n_items=60)
    cfg = sampler_cfg(
        "stratified", by="attribute", attribute_values=["A", "B"], attribute_shares=[0.8, 0.2]
    )
    s = build_sampler(cfg, pos, attributes=ATTRS)
    n = 50_000
    negs = s.sample(pos, np.zeros(n, int), np.zeros(n, int), 1, np.random.default_rng(2)).ravel()
    assert not np.isin(negs, [1, 30]).any() and (negs < 50).all()
    p = 0.8 * np.isin(np.arange(60), np.setdiff1d(np.arange(30), [1])) / 29
    p += 0.2 * np.isin(np.arange(60), np.setdiff1d(np.arange(20, 50), [30])) / 29
    observed = np.bincount(negs, minlength=60)
    assert stats.chisquare(observed[p > 0], p[p > 0] * n).pvalue > 1e-3
    d = s.describe()
    assert d["value_shares"] == {"A": 0.8, "B": 0.2}
    assert d["drawn_value_shares"]["A"] == pytest.approx(0.8, abs=0.01)
    equal = build_sampler(sampler_cfg("stratified", by="attribute"), pos, attributes=ATTRS)
    assert equal.describe()["value_shares"] == {"A": 0.5, "B": 0.5}


def test_stratified_by_attribute_refuses_unknown_values_and_bad_shares() -> None:
    pos = Interactions.from_arrays([0], [1], n_users=1, n_items=60)
    cfg = sampler_cfg("stratified", by="attribute", attribute_values=["A", "Z"])
    with pytest.raises(SamplingError, match=r"names \['Z'\], which no item has"):
        build_sampler(cfg, pos, attributes=ATTRS)
    with pytest.raises(ValueError, match="attribute_shares has 1 entries for 2"):
        sampler_cfg(
            "stratified", by="attribute", attribute_values=["A", "B"], attribute_shares=[1.0]
        )
