from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from negsamp.config import DriftCfg, SyntheticCfg
from negsamp.data.encode import to_implicit
from negsamp.data.stream import windows
from negsamp.data.synthetic import SCHEMA, SECONDS_PER_DAY, _start_unix, generate
from negsamp.drift import compare_windows, evaluate_signals

SMALL = SyntheticCfg(n_users=60, n_items=50, n_interactions=1_200, n_tastes=4, days=60)
DEFAULT = SyntheticCfg()


def _dense(raw: pl.DataFrame) -> pl.DataFrame:
    """Synthetic raw ids are 1..n with new ones appended, so raw - 1 is a stable dense id."""
    return to_implicit(raw, None).select(
        (pl.col("user") - 1).cast(pl.Int32),
        (pl.col("item") - 1).cast(pl.Int32),
        "count",
        "timestamp",
    )


def test_same_seed_same_windows_and_window_independent_of_the_others() -> None:
    a = windows(SMALL, 7, [0.0, 0.5, 1.0])
    b = windows(SMALL, 7, [0.0, 0.5, 1.0])
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert windows(SMALL, 7, [0.0])[0].equals(a[0])
    assert not windows(SMALL, 8, [0.0])[0].equals(a[0])


def test_schema_size_and_timeline_continue_the_base_log() -> None:
    ws = windows(SMALL, 3, [0.0, 1.0], n_interactions=500, window_days=10)
    base_end = _start_unix(SMALL.start) + SMALL.days * SECONDS_PER_DAY
    assert generate(SMALL, 3)["timestamp"].max() < base_end
    for w, frame in enumerate(ws):
        assert frame.schema == pl.Schema(SCHEMA) and frame.height == 500
        ts = frame["timestamp"]
        assert ts.min() >= base_end + w * 10 * SECONDS_PER_DAY
        assert ts.max() < base_end + (w + 1) * 10 * SECONDS_PER_DAY
        assert frame.sort("timestamp", "user", "item").equals(frame)
        assert set(frame["rating"].unique().to_list()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_default_window_is_a_twelfth_of_the_base() -> None:
    (w,) = windows(SMALL, 1, [0.0])
    assert w.height == round(SMALL.n_interactions * 5 / SMALL.days)  # 60 days / 12 = 5


def test_drift_zero_keeps_the_population_and_drift_adds_new_ids_in_proportion() -> None:
    zero, mild, full = windows(SMALL, 5, [0.0, 0.5, 1.0], n_interactions=20_000)
    assert zero["user"].max() <= SMALL.n_users and zero["item"].max() <= SMALL.n_items
    # drift 1: 25% new users' events, 10% new items' mass; ids past the base ranges
    n_new_users, n_new_items = round(60 * 0.25 / 0.75), round(50 * 0.1 / 0.9)
    assert full["user"].max() <= SMALL.n_users + n_new_users
    assert full["item"].max() <= SMALL.n_items + n_new_items
    user_share = (full["user"] > SMALL.n_users).mean()
    assert user_share == pytest.approx(0.25, abs=0.02)
    assert (mild["user"] > SMALL.n_users).mean() == pytest.approx(0.125, abs=0.02)
    # nested: the mild window's new ids are among the strong window's
    assert set(mild.filter(pl.col("item") > 50)["item"]) <= set(full["item"])


def test_rejects_out_of_range_drift() -> None:
    with pytest.raises(ValueError, match="drift"):
        windows(SMALL, 0, [1.5])
    with pytest.raises(ValueError, match="new_item_share"):
        windows(SMALL, 0, [0.5], new_item_share=1.0)


@pytest.fixture(scope="module")
def default_signals() -> dict[float, dict[str, bool]]:
    ref = _dense(generate(DEFAULT, 42))
    drifts = [0.0, 1.0]
    news = [_dense(w) for w in windows(DEFAULT, 42, drifts)]
    n_items = max(int(f["item"].max()) for f in [ref, *news]) + 1
    out = {}
    for d, new in zip(drifts, news, strict=True):
        values = compare_windows(ref, new, n_items)["values"]
        out[d] = {s.name: s.fired for s in evaluate_signals(values, DriftCfg())}
    return out


def test_no_drift_window_fires_nothing_at_default_thresholds(
    default_signals: dict[float, dict[str, bool]],
) -> None:
    assert not any(default_signals[0.0].values()), default_signals[0.0]


def test_a_quiet_day_fires_nothing_though_its_window_is_small() -> None:
    """548 events over 2,000 items: the plug-in JS is ~0.3 bits from sampling alone, which
    fired item_js (threshold 0.1) and retrained on every quiet day of the simulation."""
    ref = _dense(generate(DEFAULT, 42))
    [day] = windows(DEFAULT, 42, [0.0], window_days=1)
    new = _dense(day)
    n_items = max(int(f["item"].max()) for f in (ref, new)) + 1
    values = compare_windows(ref, new, n_items)["values"]
    assert values["item_js_raw"] > DriftCfg().item_js  # what fired before the correction
    fired = {s.name: s.fired for s in evaluate_signals(values, DriftCfg())}
    assert not any(fired.values()), (fired, values)


def test_strong_drift_window_fires_popularity_cold_item_and_new_user_signals(
    default_signals: dict[float, dict[str, bool]],
) -> None:
    fired = default_signals[1.0]
    for name in ("item_popularity_psi", "item_js", "cold_item_share", "new_user_share"):
        assert fired[name], (name, fired)


def test_same_seed_new_items_keep_their_clusters_across_windows() -> None:
    # new item ids mean the same item in every window: popular new items recur
    a, b = windows(SMALL, 9, [1.0, 1.0], n_interactions=5_000)
    top = lambda f: set(  # noqa: E731
        f.filter(pl.col("item") > 50)["item"].value_counts(sort=True).head(2)["item"]
    )
    assert top(a) & top(b)
    assert np.isin(a["item"].to_numpy(), b["item"].to_numpy()).mean() > 0.95
