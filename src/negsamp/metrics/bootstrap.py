"""Uncertainty over users: bootstrap confidence intervals and the paired test of two runs.

Users are the unit of resampling: their metrics are independent draws, a user's
held-out rows are not. Everything is vectorized: a block of resamples is a matrix of
resampled user indices, turned into counts ``W`` [b, n_users] and multiplied by the
per-user values [n_users, n_metrics], so all metrics share the same draws and one
matrix product does a block. Blocks keep memory at about ``BLOCK_CELLS`` numbers.
Segments (subsets of the users) reuse the same draws: a segment's resampled mean is
over the drawn users that fall in it, so its size varies from draw to draw as it would
in a new sample of users. Products run in torch, whose BLAS stays fast on a busy machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import polars as pl
import torch

from negsamp.rng import Stream, numpy_rng

BLOCK_CELLS = 1 << 22  # resample x user cells per block (32 MB of float64)
ID_COLUMNS = ("user", "n_train", "n_test")
Group = tuple[np.ndarray | slice | None, np.ndarray]  # (rows of the n users; None = all, values)


def _blocks(n: int, n_resamples: int) -> Iterator[int]:
    step = max(1, BLOCK_CELLS // max(n, 1))
    for lo in range(0, n_resamples, step):
        yield min(step, n_resamples - lo)


def resample_counts(n: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [n, b]: how often each of n users is drawn in each of b bootstrap resamples.

    Users are rows so that a segment's users are a contiguous gather. float32 holds the
    counts exactly and halves the cost of the products (sums stay within 1e-6 relative).
    """
    idx = rng.integers(0, n, size=(b, n))
    idx *= b  # in place: the [b, n] int64 draws are the block's largest buffer
    idx += np.arange(b)[:, None]
    return np.bincount(idx.ravel(), minlength=n * b).reshape(n, b).astype(np.float32)


def with_count(values: np.ndarray) -> np.ndarray:
    """float32 [n_g, m + 1]: ``values`` [n_g, m] and a column of ones (the drawn-user count),
    written into one buffer (no float32 copy and then a stacked one)."""
    values = np.asarray(values)
    out = np.empty((values.shape[0], values.shape[1] + 1), np.float32)
    out[:, :-1] = values
    out[:, -1] = 1.0
    return out


def grouped_bootstrap_sums(
    groups: list[Group],
    n: int,
    n_resamples: int,
    rng: np.random.Generator,
    counted: bool = False,
) -> list[np.ndarray]:
    """Per group, float64 [n_resamples, m_g + 1]: the sums of its values over the users
    each resample drew, then how many of its users were drawn (see :func:`sums_to_means`).

    groups: (rows int [n_g] into the n users, a slice of them (no copy) or None for all
    of them; values float [n_g, m_g], or with ``counted`` already :func:`with_count`'s
    float32 [n_g, m_g + 1], which saves a copy). Sums of groups that partition a set of
    users add up to the set's sums.
    """
    vals = [torch.from_numpy(v if counted else with_count(v)) for _, v in groups]
    rows = [
        r if r is None or isinstance(r, slice) else torch.from_numpy(np.asarray(r, np.int64))
        for r, _ in groups
    ]
    out: list[list[np.ndarray]] = [[] for _ in groups]
    for b in _blocks(n, n_resamples):
        w_all = torch.from_numpy(resample_counts(n, b, rng))  # [n, b]
        for j, (r, v) in enumerate(zip(rows, vals, strict=True)):
            if r is None or isinstance(r, slice):
                w = w_all if r is None else w_all[r]
            else:
                w = w_all.index_select(0, r)
            out[j].append((w.T @ v).numpy().astype(np.float64))
    return [
        np.concatenate(o) if o else np.zeros((0, v.shape[1]))
        for o, v in zip(out, vals, strict=True)
    ]


def sums_to_means(sums: np.ndarray) -> np.ndarray:
    """float64 [n_resamples, m]: means from :func:`grouped_bootstrap_sums` (NaN: none drawn)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:, :-1] / sums[:, -1:]


def grouped_bootstrap_means(
    groups: list[Group], n: int, n_resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per group, float64 [n_resamples, m_g]: its mean over the users each resample drew.

    A group's size varies from draw to draw; a draw with none of its users gives NaN.
    """
    return [sums_to_means(s) for s in grouped_bootstrap_sums(groups, n, n_resamples, rng)]


def bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """float64 [n_resamples, m]: the mean of each column over users, per resample.

    values: float [n_users, m], one row per user.
    """
    values = np.asarray(values, np.float64)
    return grouped_bootstrap_means([(None, values)], values.shape[0], n_resamples, rng)[0]


def percentile_ci(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float64 [m]: the central ``level`` interval of draws [n_resamples, m]."""
    alpha = (1.0 - level) / 2.0
    if draws.shape[0] == 0 or np.isnan(draws).all():
        nan = np.full(draws.shape[1], np.nan)
        return nan, nan.copy()
    low, high = np.nanquantile(draws, [alpha, 1.0 - alpha], axis=0)
    return low, high


def bootstrap_ci(
    values: np.ndarray, n_resamples: int, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI over users of each column's mean: (low, high) float64 [m]."""
    values = np.asarray(values, np.float64)
    if values.shape[0] == 0:
        nan = np.full(values.shape[1], np.nan)
        return nan, nan.copy()
    return percentile_ci(bootstrap_means(values, n_resamples, rng), level)


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int,
    level: float,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Paired comparison of two runs on the same users, each column a metric.

    a, b: float [n_users, m], row i the same user in both, every value finite (a NaN
    would make the mean, the interval and the sign flips meaningless; leave such users
    out of that metric with :func:`paired_complete_cases`). names: the m metric names,
    for errors. Returns float64 [m] arrays: ``diff`` (mean of b - a), ``ci_low``/``ci_high``
    (paired bootstrap CI of that mean) and ``p_value`` (two-sided sign-flip permutation
    test of "no difference": each user's difference keeps its size and gets a random sign).
    Raises ValueError on NaN or infinite values, on no users, or on shapes that differ.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired_test needs a, b of one shape [n_users, m]: {a.shape}, {b.shape}")
    cols = list(names) if names is not None else [f"column {j}" for j in range(a.shape[1])]
    bad = ~(np.isfinite(a) & np.isfinite(b))
    if bad.any():
        which = [cols[j] for j in np.flatnonzero(bad.any(0))]
        raise ValueError(
            f"paired_test: {which} hold NaN or infinite values for {int(bad.any(1).sum())} of "
            f"{a.shape[0]} users; leave those users out of that metric's test "
            "(paired_complete_cases)"
        )
    if a.shape[0] == 0:
        raise ValueError(f"paired_test: no users to compare {cols}")
    d = b - a
    n = d.shape[0]
    observed = d.mean(0)
    low, high = bootstrap_ci(d, n_resamples, level, rng)
    tol = 1e-9 * np.abs(d).max(0, initial=0.0) + 1e-15  # float noise of a reordered sum
    extreme = np.zeros(d.shape[1])
    dt = torch.from_numpy(np.ascontiguousarray(d, np.float64))
    for blk in _blocks(n, n_resamples):
        flips = rng.integers(0, 2, size=(blk, n)).astype(np.float64) * 2.0 - 1.0
        signs = torch.from_numpy(flips)
        flipped = (signs @ dt).numpy() / n
        extreme += (np.abs(flipped) >= np.abs(observed) - tol).sum(0)
    p = (1.0 + extreme) / (1.0 + n_resamples)
    return {"diff": observed, "ci_low": low, "ci_high": high, "p_value": p}


def paired_complete_cases(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int,
    level: float,
    rng: np.random.Generator,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`paired_test` of each metric over the users with a value in both runs.

    a, b: float [n_users, m] (NaN: no value, e.g. a null read from a per-user table). A
    user whose value is NaN in either run for a metric is left out of that metric's test
    only. Returns paired_test's float64 [m] arrays, ``a`` / ``b`` (the runs' means over
    the users each metric used) and ``n_users`` int64 [m]. Metrics that use the same
    users share one test and its draws, so without NaN this is one :func:`paired_test`.
    Raises ValueError naming the metrics no user is left for.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired test needs a, b of one shape [n_users, m]: {a.shape}, {b.shape}")
    m = a.shape[1]
    cols = list(names) if names is not None else [f"column {j}" for j in range(m)]
    present = ~(np.isnan(a) | np.isnan(b))  # [n_users, m]
    used = present.sum(0)
    empty = [cols[j] for j in np.flatnonzero(used == 0)]
    if empty:
        raise ValueError(
            f"no user has a value (not NaN) in both runs for {empty} ({a.shape[0]} users "
            "compared): re-run evaluate for both runs, or leave those metrics out"
        )
    groups: dict[bytes, list[int]] = {}  # metrics by their set of users, in column order
    for j in range(m):
        groups.setdefault(present[:, j].tobytes(), []).append(j)
    out = {k: np.empty(m) for k in ("diff", "ci_low", "ci_high", "p_value", "a", "b")}
    for js in groups.values():
        rows = present[:, js[0]]
        va, vb = (a, b) if rows.all() else (a[rows], b[rows])  # as given: the same sums
        if len(js) < m:
            va, vb = va[:, js], vb[:, js]
        res = paired_test(va, vb, n_resamples, level, rng, [cols[j] for j in js])
        res |= {"a": va.mean(0), "b": vb.mean(0)}
        for k, v in res.items():
            out[k][js] = v
    return out | {"n_users": used.astype(np.int64)}


def metric_columns(frame: pl.DataFrame) -> list[str]:
    """The per-user metric columns of a per-user frame (floats, not ids or bands)."""
    return [c for c, t in frame.schema.items() if t.is_float() and c not in ID_COLUMNS]


def compare(
    a: pl.DataFrame,
    b: pl.DataFrame,
    metrics: list[str] | None = None,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """Compare two runs' per-user metrics, paired on the users both evaluated.

    A user whose value is NaN or null in either run for a metric is left out of that
    metric's test (:func:`paired_complete_cases`). Returns one row per metric: metric,
    a, b (means over the users that metric used), diff (b - a), ci_low, ci_high,
    p_value, n_users (the users that metric used). Raises ValueError naming a metric
    no user is left for.
    """
    common = [c for c in metric_columns(a) if c in set(metric_columns(b))]
    names = metrics or common
    unknown = [m for m in names if m not in common]
    if unknown:
        shown = ", ".join(common[:8]) + (", ..." if len(common) > 8 else "")
        raise ValueError(
            f"metrics {unknown} are not in both per-user tables ({len(common)} shared: {shown})"
        )
    if not names:
        raise ValueError("the two per-user tables share no metric column")
    j = a.select("user", *names).join(b.select("user", *names), on="user", suffix="__b")
    if j.height == 0:
        raise ValueError("the two runs share no evaluated user: were they evaluated on one split?")
    va = j.select(names).to_numpy().astype(np.float64)  # null -> NaN: no value
    vb = j.select([f"{m}__b" for m in names]).to_numpy().astype(np.float64)
    rng = numpy_rng(seed, Stream.COMPARE)
    res = paired_complete_cases(va, vb, n_resamples, level, rng, names)
    order = ("a", "b", "diff", "ci_low", "ci_high", "p_value", "n_users")
    return pl.DataFrame({"metric": names} | {k: res[k] for k in order})
