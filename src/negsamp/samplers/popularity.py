"""``popularity``: P(i) proportional to count(i)^alpha over the user's non-positives.

alpha = 0 is uniform, 0.75 the word2vec choice, 1 raw popularity. Items never seen
in training have count 0 and so are never drawn when alpha > 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers import register_sampler
from negsamp.samplers.cdf import DiscreteTable
from negsamp.samplers.exact import DrawStats, SamplingError, weighted_excluding
from negsamp.samplers.stats import restricted_target
from negsamp.samplers.timeaware import non_positive, normalized


def popularity_weights(train: Interactions, alpha: float, by: str = "events") -> np.ndarray:
    """float64 [n_items]: count(i)^alpha (0^0 = 1, so alpha = 0 is uniform); count(i) is the
    item's training positives (``by: events``) or their summed strength (``by: weight``:
    the aggregated weight column, else the aggregated event counts)."""
    if by == "weight":
        count = np.bincount(train.indices, weights=train.counts, minlength=train.n_items)
    else:
        count = train.item_counts().astype(np.float64)
    return np.power(count, alpha)


@register_sampler("popularity")
class PopularitySampler:
    def __init__(self, cfg: Any, train: Interactions, **_: Any) -> None:
        self.cfg = cfg
        self.replace = bool(getattr(cfg, "replace", True))
        self.weights = popularity_weights(train, cfg.alpha, getattr(cfg, "by", "events"))
        if not self.weights.any():
            raise SamplingError(
                "popularity: no item has non-zero sampling weight (no training counts); "
                "use uniform, or popularity with alpha=0"
            )
        self.table = DiscreteTable(self.weights)
        self.stats = DrawStats()

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """int32 [B, n_neg]: guide-table draws, rejection, exact bisection for stragglers."""
        return weighted_excluding(
            exclude, users, n_neg, self.table, rng, stats=self.stats, replace=self.replace
        )

    def target(self, exclude: Interactions, users: np.ndarray) -> np.ndarray:
        return restricted_target(self.weights, exclude, users)

    def static_weights(self) -> np.ndarray:
        """float64 [n_items]: the fixed item weights the draw restricts to non-positives."""
        return self.weights

    def row_probabilities(
        self, exclude: Interactions, users: np.ndarray, pos_items: np.ndarray
    ) -> np.ndarray:
        """float64 [k, n_items]: each row's draw distribution (weights over non-positives)."""
        return normalized(non_positive(exclude, users) * self.weights[None, :])

    def describe(self) -> dict[str, Any]:
        p = self.table.probabilities()
        by = {"by": "weight"} if getattr(self.cfg, "by", "events") == "weight" else {}
        return by | {
            "method": "guide-table inverse CDF, rejection, then exact bisection over non-positives",
            "alpha": self.cfg.alpha,
            "replace": self.replace,
            "target_entropy": float(-(p[p > 0] * np.log(p[p > 0])).sum()),
            "items_with_zero_weight": int((self.weights == 0).sum()),
        }
