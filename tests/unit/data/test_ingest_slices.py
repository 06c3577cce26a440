"""Issue #16: a log aggregated in row slices (as a log larger than memory is) gives the
same pairs as one pass, for every weight rule, threshold, zero weights and batches."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from negsamp.data import encode
from negsamp.data.encode import WEIGHT_AGGREGATES, to_implicit


def _log(n: int = 3_000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = rng.integers(0, 50, n).astype(float)
    ts[rng.random(n) < 0.1] = np.nan  # some events have no time
    return pl.DataFrame(
        {
            "user": rng.integers(0, 12, n),
            "item": rng.integers(0, 9, n),
            "rating": rng.integers(1, 6, n).astype(float),
            "timestamp": pl.Series(ts).fill_nan(None).cast(pl.Int64),
            "weight": rng.integers(0, 4, n).astype(float),  # integral: sums are exact
            "_batch": np.sort(rng.integers(0, 3, n)).astype(np.int32),
        }
    )


@pytest.mark.parametrize("rule", WEIGHT_AGGREGATES)
@pytest.mark.parametrize("threshold", [None, 3.0])
def test_sliced_aggregation_equals_one_pass(
    rule: str, threshold: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _log()
    plain = log.drop("weight", "_batch")
    whole, whole_plain = to_implicit(log, threshold, rule), to_implicit(plain, threshold)
    monkeypatch.setattr(encode, "SLICE_ROWS", 256)  # 12 slices
    assert_frame_equal(to_implicit(log.lazy(), threshold, rule), whole)
    assert_frame_equal(to_implicit(plain.lazy(), threshold), whole_plain)
