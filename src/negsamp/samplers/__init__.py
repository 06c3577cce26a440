"""Negative samplers: an explicit registry of plug-ins keyed by ``name``.

A data-side sampler is built from its typed config and the training positives,
then asked for ``int32 [batch, n_neg]`` negatives for a batch of (user, positive
item) pairs with a seeded generator. It never returns one of the user's
positives, and it is vectorized: no Python loop per user or per positive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers.exact import DrawStats, SamplingError

__all__ = ["Sampler", "SamplingError", "build_sampler", "register_sampler", "registered"]


class Sampler(Protocol):
    stats: DrawStats

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """int32 [len(users), n_neg]; never an item of ``exclude`` for that user."""
        ...

    def describe(self) -> dict[str, Any]:
        """Sampler statistics for the pool manifest (e.g. the target distribution)."""
        ...


_REGISTRY: dict[str, Callable[..., Sampler]] = {}


def register_sampler(name: str) -> Callable[[Callable[..., Sampler]], Callable[..., Sampler]]:
    def deco(factory: Callable[..., Sampler]) -> Callable[..., Sampler]:
        if name in _REGISTRY:
            raise ValueError(f"sampler {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def registered() -> list[str]:
    return sorted(_REGISTRY)


def build_sampler(cfg: Any, train: Interactions) -> Sampler:
    """Instantiate the sampler named by ``cfg.name`` for these training positives."""
    try:
        factory = _REGISTRY[cfg.name]
    except KeyError:
        raise ValueError(f"unknown sampler {cfg.name!r}; known samplers: {registered()}") from None
    return factory(cfg, train)


# Plug-ins register themselves on import; the list is explicit (no module scanning).
from negsamp.samplers import popularity, uniform  # noqa: E402, F401
