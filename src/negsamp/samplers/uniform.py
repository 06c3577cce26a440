"""``uniform``: every item the user has not interacted with is equally likely."""

from __future__ import annotations

from typing import Any

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers import register_sampler
from negsamp.samplers.exact import DrawStats, uniform_excluding


@register_sampler("uniform")
class UniformSampler:
    def __init__(self, cfg: Any, train: Interactions) -> None:
        self.cfg = cfg
        self.stats = DrawStats()

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """int32 [B, n_neg], exact (no draw is rejected), with replacement within a row."""
        return uniform_excluding(exclude, users, n_neg, rng, replace=True, stats=self.stats)

    def describe(self) -> dict[str, Any]:
        return {"method": "exact rank mapping over non-positives"}
