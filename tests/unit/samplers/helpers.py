"""Helpers and Hypothesis strategies shared by the sampler tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from negsamp.config import Config, SamplerSection
from negsamp.interactions import Interactions


def sampler_cfg(name: str, **kw: Any) -> Any:
    """The resolved config of sampler ``name``, built the way params.yaml holds it: shared
    settings at the section level, the sampler's own under its name."""
    shared = {k: kw.pop(k) for k in list(kw) if k in SamplerSection.SHARED}
    section = {"name": name, **shared, **({name: kw} if kw else {})}
    return Config.model_validate({"sampler": section}).sampler.active


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
