"""``uniform``: every item the user has not interacted with is equally likely."""

from __future__ import annotations

from typing import Any

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers import register_sampler
from negsamp.samplers.exact import DrawStats, uniform_excluding
from negsamp.samplers.stats import restricted_target
from negsamp.samplers.timeaware import non_positive, normalized


@register_sampler("uniform")
class UniformSampler:
    def __init__(self, cfg: Any, train: Interactions, **_: Any) -> None:
        self.cfg = cfg
        self.replace = bool(getattr(cfg, "replace", True))
        self.n_items = train.n_items
        self.stats = DrawStats()

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """int32 [B, n_neg]: rejection from the catalog, exact rank mapping for stragglers."""
        return uniform_excluding(exclude, users, n_neg, rng, replace=self.replace, stats=self.stats)

    def target(self, exclude: Interactions, users: np.ndarray) -> np.ndarray:
        return restricted_target(np.ones(exclude.n_items), exclude, users)

    def static_weights(self) -> np.ndarray:
        """float64 [n_items]: the fixed item weights the draw restricts to non-positives."""
        return np.ones(self.n_items)

    def row_probabilities(
        self, exclude: Interactions, users: np.ndarray, pos_items: np.ndarray
    ) -> np.ndarray:
        """float64 [k, n_items]: each row's draw distribution (uniform over non-positives)."""
        return normalized(non_positive(exclude, users))

    def describe(self) -> dict[str, Any]:
        return {
            "method": "rejection from the catalog, then exact rank mapping over non-positives",
            "replace": self.replace,
        }
