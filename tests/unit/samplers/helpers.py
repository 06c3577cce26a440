"""Helpers and Hypothesis strategies shared by the sampler tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st

from negsamp.config import Config, SamplerSection
from negsamp.interactions import Interactions
from negsamp.samplers import build_sampler, registered


def sampler_cfg(name: str, **kw: Any) -> Any:
    """The resolved config of sampler ``name``, built the way params.yaml holds it: shared
    settings at the section level, the sampler's own under its name."""
    shared = {k: kw.pop(k) for k in list(kw) if k in SamplerSection.SHARED}
    section = {"name": name, **shared, **({name: kw} if kw else {})}
    return Config.model_validate({"sampler": section}).sampler.active


def wide_positives() -> Interactions:
    """1,100 users (5 user blocks) x 300 items, so shards cut real block boundaries."""
    rng = np.random.default_rng(0)
    u = rng.integers(0, 1100, 25_000)
    i = np.minimum(rng.zipf(1.3, 25_000) - 1, 299)
    return Interactions.from_arrays(u, i, 1100, 300)


def fake_attributes(n_items: int, family: str = "genre") -> pl.DataFrame:
    """Item features for a test catalog: item i has values g{i % 4} and g{4 + (i // 3) % 3},
    except every item i with i % 7 == 3, which has none (the uniform fallback's case)."""
    items = np.arange(n_items)
    keep = items % 7 != 3
    it = np.concatenate([items[keep], items[keep]])
    val = np.concatenate([items[keep] % 4, 4 + (items[keep] // 3) % 3])
    return pl.DataFrame(
        {
            "item": pl.Series(it, dtype=pl.Int32),
            "family": [family] * it.size,
            "value": [f"g{v}" for v in val],
        }
    )


def fake_times(pos: Interactions) -> Any:
    """ItemTimes for a test catalog: item i is first seen at time i; positive (u, i) happens
    at (3u + i) % n_items + n_items // 4, so many items are not released yet."""
    from negsamp.samplers.timeaware import ItemTimes

    u, i = pos.rows(), pos.indices.astype(np.int64)
    t = (3 * u + i) % pos.n_items + pos.n_items // 4
    return ItemTimes.build(u, i, t, np.arange(pos.n_items))


def fake_teacher(users: np.ndarray, n_items: int = 0) -> np.ndarray:
    """A deterministic stand-in for a model's score_all: float64 [len(users), n_items]."""
    items = np.arange(n_items)
    return np.sin(np.outer(np.asarray(users) + 1.0, items * 0.37 + 0.11)) + items * 1e-3


def teacher_for(pos: Interactions):  # noqa: ANN201 - a score_all callable
    return lambda users: fake_teacher(users, pos.n_items)


@st.composite
def csr(
    draw: st.DrawFn, min_free: int = 1, max_users: int = 12, max_items: int = 40
) -> Interactions:
    """Random sparse positives where every user keeps >= ``min_free`` non-positives.

    Some users are pushed to exactly ``min_free`` non-positives left (the hardest case).
    """
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(max(2, min_free + 1), max_items))
    dense = draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_items, max_size=n_items),
            min_size=n_users,
            max_size=n_users,
        )
    )
    m = np.array(dense, bool)
    full = draw(st.lists(st.integers(0, n_users - 1), max_size=n_users))
    m[full] = True  # these users keep exactly min_free non-positives
    for k in range(min_free):
        m[np.arange(n_users), (np.arange(n_users) * 7 + k) % n_items] = False
    u, i = np.nonzero(m)
    return Interactions.from_arrays(u, i, n_users, n_items)


# every registered sampler, stratified over attribute values as well as popularity bands,
# and the samplers that support exclude_unreleased with it: what the contract suites run
UNRELEASED = ["uniform", "popularity", "stratified", "same_attribute", "stratified:attribute"]
CASES = [*registered(), "stratified:attribute", *(f"{n}+unreleased" for n in UNRELEASED)]
EXTRA = {
    "teacher_hard": {"top_k": 1000},  # a list longer than any test catalog
    "stratified:attribute": {"by": "attribute"},
}


def make_sampler(name: str, train: Interactions, **kw: Any) -> Any:
    """The sampler of contract case ``name`` (see CASES) on ``train``, with every dependency
    a plug-in may take: a teacher, item attributes and item times."""
    base = name.removesuffix("+unreleased")
    if name.endswith("+unreleased"):
        kw["exclude_unreleased"] = True
    cfg = sampler_cfg(base.split(":")[0], **{**EXTRA.get(base, {}), **kw})
    deps = {
        "score_all": teacher_for(train),
        "attributes": fake_attributes(train.n_items),
        "times": fake_times(train),
    }
    return build_sampler(cfg, train, **deps)
