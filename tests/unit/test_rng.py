"""The named random streams: reproducible, distinct, and the bytes of before (the tags)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from negsamp.rng import (
    SHARED_TAGS,
    Stream,
    check_registry,
    derive_seed,
    numpy_rng,
    seed_sequence,
    torch_generator,
)


def _keys(stream: Stream) -> tuple[int, ...]:
    return tuple(range(1, len(stream.value.keys) + 1))


@pytest.mark.parametrize("stream", list(Stream), ids=lambda s: s.name)
def test_the_same_seed_stream_and_keys_give_the_same_draws(stream: Stream) -> None:
    k = _keys(stream)
    assert np.array_equal(numpy_rng(7, stream, *k).random(5), numpy_rng(7, stream, *k).random(5))
    a = torch.rand(5, generator=torch_generator(7, stream, *k))
    assert torch.equal(a, torch.rand(5, generator=torch_generator(7, stream, *k)))
    assert not np.array_equal(
        numpy_rng(7, stream, *k).random(5), numpy_rng(8, stream, *k).random(5)
    )


def test_different_streams_and_keys_draw_differently() -> None:
    draws = {s: numpy_rng(3, s, *_keys(s)).random(4).tobytes() for s in Stream}
    assert len(set(draws.values())) == len(Stream)
    seeds = {derive_seed(3, s, *_keys(s)) for s in Stream}
    assert len(seeds) == len(Stream)
    pool = [numpy_rng(3, Stream.POOL, e, b).random(3).tobytes() for e in (0, 1) for b in (0, 1)]
    assert len(set(pool)) == 4


def test_tags_are_unique_but_for_the_documented_legacy_pair() -> None:
    check_registry()
    tags = Counter(s.tag for s in Stream if s.tag is not None)
    assert {t for t, n in tags.items() if n > 1} == set(SHARED_TAGS) == {2}
    assert SHARED_TAGS[2] == {Stream.MODEL_INIT, Stream.EVAL_CANDIDATES}
    children = [s.value.child for s in Stream if s.value.child is not None]
    assert len(children) == len(set(children))
    assert len({s.name for s in Stream}) == len(Stream)


def test_streams_derive_exactly_as_the_call_sites_did_before() -> None:
    """The tag values are part of the format: pools, candidates, models, intervals keep
    their bytes (issue #12 moved the call sites here without changing a draw)."""
    seed = 42

    def legacy(entropy: list[int]) -> np.ndarray:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy))).random(4)

    same = np.array_equal
    assert same(numpy_rng(seed, Stream.POOL, 3, 5).random(4), legacy([seed, 1, 3, 5]))
    assert same(numpy_rng(seed, Stream.EVAL_CANDIDATES, 0, 5).random(4), legacy([seed, 2, 0, 5]))
    assert same(numpy_rng(seed, Stream.SEGMENTS).random(4), legacy([seed, 0x5E6]))
    assert same(numpy_rng(seed, Stream.GATE).random(4), legacy([seed, 0xC4A1]))
    assert same(numpy_rng(seed, Stream.COMPARE).random(4), np.random.default_rng(seed).random(4))
    for stream, purpose in (
        (Stream.MODEL_INIT, 2),
        (Stream.SHUFFLE, 3),
        (Stream.NEGATIVES, 4),
        (Stream.DROPOUT, 5),
        (Stream.VALIDATION, 6),
    ):
        want = int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0])
        assert derive_seed(seed, stream) == want
        assert torch_generator(seed, stream).initial_seed() == want
    children = np.random.SeedSequence(seed).spawn(7)
    for stream, child in (
        (Stream.SYNTHETIC_ITEMS, 0),
        (Stream.SYNTHETIC_USERS, 1),
        (Stream.SYNTHETIC_EVENTS, 2),
        (Stream.DRIFT_POPULATION, 3),
    ):
        want = np.random.default_rng(children[child]).random(4)
        assert same(numpy_rng(seed, stream).random(4), want)
    for w in (0, 2):
        want = np.random.default_rng(children[4 + w]).random(4)
        assert same(numpy_rng(seed, Stream.DRIFT_WINDOW, w).random(4), want)


def test_a_stream_takes_exactly_its_keys() -> None:
    with pytest.raises(TypeError, match=r"POOL takes keys \('epoch', 'block'\)"):
        seed_sequence(0, Stream.POOL, 1)
    with pytest.raises(TypeError, match="GATE takes keys"):
        numpy_rng(0, Stream.GATE, 1)
