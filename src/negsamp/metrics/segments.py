"""Segments: every metric by user activity band and by the held-out item's popularity band.

- ``user_activity``: cold / medium / heavy by the user's training positives, with
  ``edges`` from params: cold < edges[0] <= medium < edges[1] <= heavy.
- ``item_popularity``: head / torso / tail of the held-out item (see
  :func:`negsamp.metrics.beyond.item_bands`). Each held-out row is scored on its own
  (row metrics), averaged per user within the band, then over the band's users; with
  one held-out item per user these are the user-level values.

The table is long, one row per (segment, band, metric): value (mean over the band's
users), ci_low / ci_high (bootstrap over those users), n_users. Empty bands are left out.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from negsamp.metrics.beyond import BAND_NAMES
from negsamp.metrics.bootstrap import (
    grouped_bootstrap_sums,
    percentile_ci,
    sums_to_means,
    with_count,
)
from negsamp.rng import Stream, numpy_rng

USER_BANDS = ("cold", "medium", "heavy")
SCHEMA = {
    "segment": pl.String,
    "band": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_users": pl.Int64,
}
# (segment, band, rows of the users or None for all, mean [m], users, metric names)
_Job = tuple[str, str, np.ndarray | slice | None, np.ndarray, int, list[str]]


def user_bands(n_train: np.ndarray, edges: tuple[int, int]) -> np.ndarray:
    """int8 [U]: 0 cold, 1 medium, 2 heavy by training positives per user."""
    return np.searchsorted(np.asarray(edges), np.asarray(n_train), side="right").astype(np.int8)


def table(
    per_user: pl.DataFrame,
    item_rows: pl.DataFrame,
    user_metrics: list[str],
    row_metrics: list[str],
    n_resamples: int,
    level: float,
    seed: int,
) -> pl.DataFrame:
    """The per-segment table, the ``all`` segment (every user) first.

    per_user: one row per user, ascending ``user``, with an ``activity`` band column and
    ``user_metrics``. item_rows: one row per held-out row with ``user``, ``band`` (its
    item's popularity band) and ``row_metrics``. Every segment's interval comes from the
    same bootstrap draws of users (seeded by ``seed``), so the table is reproducible.
    """
    users = per_user["user"].to_numpy()
    user_values = per_user.select(user_metrics).to_numpy().astype(np.float64)
    band_code = {b: i for i, b in enumerate(USER_BANDS)}
    code = per_user["activity"].replace_strict(band_code, return_dtype=pl.Int8).to_numpy()
    # the bootstrap sees users grouped by activity band, so each band is a slice (no copy)
    order = np.argsort(code, kind="stable")
    where = np.empty_like(order)
    where[order] = np.arange(order.size)
    edges = np.searchsorted(code[order], np.arange(len(USER_BANDS) + 1))
    # each band's mean and size are taken first and its values kept only as the bootstrap's
    # float32 input (with_count), so no float64 copy of a band outlives its mean: at 100k
    # users and ~80 metrics that is ~0.2 GiB less at the bootstrap's peak
    jobs: list[_Job] = [("all", "all", None, user_values.mean(0), users.size, user_metrics)]
    groups: list[tuple[np.ndarray | slice, np.ndarray]] = []

    def add(
        segment: str, band: str, rows: np.ndarray | slice, values: np.ndarray, metrics: list[str]
    ) -> None:
        if values.shape[0]:  # empty bands are left out
            jobs.append((segment, band, rows, values.mean(0), values.shape[0], metrics))
            groups.append((rows, with_count(values)))

    for i, b in enumerate(USER_BANDS):
        rows = slice(int(edges[i]), int(edges[i + 1]))
        add("user_activity", b, rows, user_values[order[rows]], user_metrics)
    del user_values
    per_band = (
        item_rows.group_by("user", "band").agg(pl.col(row_metrics).mean()).sort("user", "band")
    )
    for b in BAND_NAMES:
        part = per_band.filter(pl.col("band") == b)
        rows = where[np.searchsorted(users, part["user"].to_numpy())]
        add("item_popularity", b, rows, part.select(row_metrics).to_numpy(), row_metrics)
    del per_band, part
    if not groups:
        return pl.DataFrame(schema=SCHEMA)
    rng = numpy_rng(seed, Stream.SEGMENTS)
    sums = grouped_bootstrap_sums(groups, users.size, n_resamples, rng, counted=True)
    # the activity bands partition the users: their sums add up to everyone's
    everyone = sum(s for j, s in zip(jobs[1:], sums, strict=True) if j[0] == "user_activity")
    sums.insert(0, everyone)
    draws = [sums_to_means(s) for s in sums]
    parts = []
    for (segment, band, _, mean, n_users, metrics), d in zip(jobs, draws, strict=True):
        low, high = percentile_ci(d, level)
        parts.append(
            pl.DataFrame(
                {
                    "segment": segment,
                    "band": band,
                    "metric": metrics,
                    "value": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_users": n_users,
                },
                schema=SCHEMA,
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame(schema=SCHEMA)
