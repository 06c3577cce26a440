"""Negative samplers: an explicit registry of plug-ins keyed by ``name``.

A *data-side* sampler is built from its typed config and the training positives, then
asked for ``int32 [batch, n_neg]`` negatives for a batch of (user, positive item) pairs
with a seeded generator. It never returns an item of the ``exclude`` CSR it is handed
for that user (the stage resolves ``exclude: train | train+valid | none`` into that CSR;
for ``none`` it hands :func:`no_exclusions`, an empty CSR, and the sampler may then
return positives). It is vectorized (no Python loop per user or per positive) and a pure
function of its inputs, so pools can be sharded by user range.

*Batch-side* negatives (``in_batch``, ``hard``, ``mixed``) act on the training batch and
live in :mod:`negsamp.samplers.batch`. ``hard`` and ``mixed`` still read a pool: the
candidates drawn by their ``base`` sampler, which :func:`build_sampler` returns for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers.exact import DrawStats, SamplingError, no_exclusions

__all__ = [
    "BATCH_SIDE",
    "Sampler",
    "SamplingError",
    "build_sampler",
    "no_exclusions",
    "register_sampler",
    "registered",
]

BATCH_SIDE = ("in_batch", "hard", "mixed")


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
        """int32 [len(users), n_neg]; never an item of ``exclude`` for that user.

        users, pos_items: int [B]. ``exclude`` may be empty (``no_exclusions``); rows are
        cheapest when sorted by user over a narrow id range (the pool's user blocks).
        """
        ...

    def target(self, exclude: Interactions, users: np.ndarray) -> np.ndarray:
        """float64 [n_items]: the distribution of a negative drawn for a row of ``users``
        (averaged over the rows), which the pool statistics compare the draws against."""
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
    """The data-side samplers (each writes a pool of its own negatives)."""
    return sorted(_REGISTRY)


def build_sampler(cfg: Any, train: Interactions, **deps: Any) -> Sampler:
    """Instantiate the data-side sampler for ``cfg`` and these training positives.

    ``hard`` / ``mixed`` get their base sampler (the pool holds their candidates);
    ``in_batch`` has no pool. ``deps`` carries what a plug-in cannot build from params,
    e.g. ``score_all`` for ``teacher_hard`` (the stage loads the teacher model),
    ``attributes`` (the item features frame) for the attribute samplers, and ``times``
    (:class:`~negsamp.samplers.timeaware.ItemTimes`) for ``exclude_unreleased``, which wraps
    the sampler in :class:`~negsamp.samplers.timeaware.TimeAwareSampler`.
    """
    name = cfg.name
    if name == "in_batch":
        raise ValueError(
            "sampler 'in_batch' is batch-side: it has no pool; the trainer uses "
            "negsamp.samplers.batch.in_batch_logits"
        )
    if name in ("hard", "mixed"):
        cfg, name = cfg.base_cfg(), cfg.base
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown sampler {name!r}; known samplers: {registered()} "
            f"(batch-side: {list(BATCH_SIDE)})"
        ) from None
    sampler = factory(cfg, train, **deps)
    if getattr(cfg, "exclude_unreleased", False):
        from negsamp.samplers.timeaware import TimeAwareSampler

        if deps.get("times") is None:
            raise ValueError("exclude_unreleased needs the items' times: pass times=ItemTimes")
        return TimeAwareSampler(sampler, deps["times"])
    return sampler


# Plug-ins register themselves on import; the list is explicit (no module scanning).
from negsamp.samplers import (  # noqa: E402, F401
    attributes,
    popularity,
    stratified,
    teacher,
    uniform,
)
