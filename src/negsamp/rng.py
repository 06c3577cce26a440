"""The named random streams of ``base.seed``: every generator negsamp draws from comes from here.

A stream is a name for one use of randomness (the pool's negatives, a model's initial
weights, dropout masks, the champion gate's sign flips, ...). Its generator is a pure
function of ``(seed, stream, *keys)``, so the same params give the same bytes, two
uses never share draws by accident, and a shard, a resumed run or a re-run draws
exactly what the whole run would.

How a stream becomes a generator is part of the output format: changing a tag changes
the bytes of what the stream draws (pools, candidates, models, intervals). Two kinds:

* tagged: ``SeedSequence([seed, tag, *keys])``; :func:`numpy_rng` wraps it in PCG64,
  :func:`torch_generator` seeds a ``torch.Generator`` with its first 32-bit word
  (:func:`derive_seed`);
* spawned (the synthetic data generators): child ``child + key`` of
  ``SeedSequence(seed)``, i.e. ``SeedSequence(seed).spawn(n)[child + key]``.

Tags are unique but for one pair kept for byte compatibility (:data:`SHARED_TAGS`):
``MODEL_INIT`` and ``EVAL_CANDIDATES`` both mix in 2, the first as a 32-bit torch seed
(no keys), the second as PCG64 state (keys epoch 0, block), so the model-init seed equals
the first state word of candidate block 0. The generators are unrelated in practice
(mt19937 seeded with 32 bits vs PCG64), but a new stream must take a new tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Spec:
    """How a stream derives from the seed, and who draws from it."""

    tag: int | None  # tagged: entropy [seed, tag, *keys]
    child: int | None  # spawned: child ``child + keys[0]`` (or ``child``) of SeedSequence(seed)
    keys: tuple[str, ...]  # the keys the stream takes, in order
    use: str


class Stream(Enum):
    """Every named stream, with its tag (or spawned child), its keys and its user."""

    COMPARE = Spec(0, None, (), "negsamp compare: bootstrap and sign flips (= default_rng(seed))")
    POOL = Spec(1, None, ("epoch", "block"), "training-pool negatives, per epoch and user block")
    EVAL_CANDIDATES = Spec(2, None, ("epoch", "block"), "sampled-protocol candidates (epoch 0)")
    MODEL_INIT = Spec(2, None, (), "initial model parameters (torch)")
    SHUFFLE = Spec(3, None, (), "order of the training positives, epoch after epoch (torch)")
    NEGATIVES = Spec(4, None, (), "batch-side draws: hard temperature, mixed cap redraws (torch)")
    DROPOUT = Spec(5, None, (), "dropout masks of the MLP tower (torch, on the device)")
    VALIDATION = Spec(6, None, (), "seed of the validation candidates (then EVAL_CANDIDATES)")
    # data-parallel training (issue #16): worker rank >= 1's own draws; rank 0 draws the above
    WORKER_NEGATIVES = Spec(7, None, ("rank",), "NEGATIVES of data-parallel worker rank")
    WORKER_DROPOUT = Spec(8, None, ("rank",), "DROPOUT of data-parallel worker rank")
    SPLIT = Spec(0x5B17, None, (), "random splits: each user's held-out items")
    SEGMENTS = Spec(0x5E6, None, (), "evaluate: bootstrap intervals of every segment")
    GATE = Spec(0xC4A1, None, (), "the champion gate's paired test")
    # SWEEP was [seed, rank] before: rank 2 drew EVAL_CANDIDATES block 0's very stream
    SWEEP = Spec(0x5EE9, None, ("rank",), "the sweep table's paired test of a rank vs the best")
    PROTOCOLS = Spec(0x9A07, None, ("pair",), "paired tests of a sampled/full order reversal")
    SYNTHETIC_ITEMS = Spec(None, 0, (), "synthetic data: item popularity and clusters")
    SYNTHETIC_USERS = Spec(None, 1, (), "synthetic data: user tastes and activity")
    SYNTHETIC_EVENTS = Spec(None, 2, (), "synthetic data: the base log's events")
    DRIFT_POPULATION = Spec(None, 3, (), "drift stream: future users and items")
    DRIFT_WINDOW = Spec(None, 4, ("window",), "drift stream: window w's events (child 4 + w)")

    @property
    def tag(self) -> int | None:
        return self.value.tag


SHARED_TAGS = {2: frozenset({Stream.MODEL_INIT, Stream.EVAL_CANDIDATES})}  # see module doc


def check_registry() -> None:
    """Raise ValueError when two streams would derive alike (run at import)."""
    by_tag: dict[int, set[Stream]] = {}
    for s in Stream:
        if (s.value.tag is None) == (s.value.child is None):
            raise ValueError(f"stream {s.name}: give exactly one of tag and child")
        if s.value.tag is not None:
            by_tag.setdefault(s.value.tag, set()).add(s)
    for tag, streams in by_tag.items():
        if len(streams) > 1 and streams != SHARED_TAGS.get(tag):
            raise ValueError(f"streams {sorted(x.name for x in streams)} share tag {tag}")
    spawned = sorted((s for s in Stream if s.value.child is not None), key=lambda s: s.value.child)
    children = [s.value.child for s in spawned]
    if len(set(children)) != len(children):
        raise ValueError(f"spawned streams share a child: {children}")
    if any(s.value.keys for s in spawned[:-1]):  # a keyed stream owns every child above its own
        raise ValueError("only the highest spawned stream may take a key")


def seed_sequence(seed: int, stream: Stream, *keys: int) -> np.random.SeedSequence:
    """The SeedSequence of ``stream`` for ``seed`` and its keys (non-negative ints)."""
    spec = stream.value
    if len(keys) != len(spec.keys):
        raise TypeError(f"stream {stream.name} takes keys {spec.keys}, got {len(keys)}: {keys}")
    ks = [int(k) for k in keys]
    if spec.tag is not None:
        return np.random.SeedSequence([int(seed), spec.tag, *ks])
    return np.random.SeedSequence(int(seed), spawn_key=(spec.child + sum(ks),))


def numpy_rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """A PCG64 generator of ``stream`` (the same draws for the same arguments, anywhere)."""
    return np.random.default_rng(seed_sequence(seed, stream, *keys))


def derive_seed(seed: int, stream: Stream, *keys: int) -> int:
    """A 32-bit seed of ``stream``: what :func:`torch_generator` seeds with, or a sub-seed
    handed to a function that derives its own streams (``VALIDATION``)."""
    return int(seed_sequence(seed, stream, *keys).generate_state(1)[0])


def torch_generator(
    seed: int, stream: Stream, *keys: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded for ``stream``. Its draws are reproducible
    per device type (CPU and CUDA generators differ); checkpoint its state to resume."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, stream, *keys))
    return g


check_registry()
