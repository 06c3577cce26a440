"""Fixtures for the sampler tests."""

from __future__ import annotations

import numpy as np
import pytest

from negsamp.interactions import Interactions


@pytest.fixture
def train() -> Interactions:
    """50 users x 80 items, Zipf-popular items (600 draws, duplicates summed)."""
    rng = np.random.default_rng(0)
    u = rng.integers(0, 50, 600)
    i = np.minimum(rng.zipf(1.5, 600) - 1, 79)
    return Interactions.from_arrays(u, i, 50, 80)
