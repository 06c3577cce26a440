"""The ``negative_js`` signal: where a sampler's negatives fall over popularity deciles.

The deciles are :func:`popularity_bands`, the definition ``samplers/stats.py`` writes to
the pool manifest (``statistics.popularity_deciles.negatives``). Each side bands by its
own training counts, so a mere re-ranking of items barely moves the signal for a
popularity sampler; it moves when popularity's concentration, the catalog or the
sampler's configuration changes.
"""

from __future__ import annotations

import numpy as np

from negsamp.drift.distances import js_divergence


def popularity_bands(item_counts: np.ndarray, n_bands: int = 10) -> np.ndarray:
    """int64 [n_items]: band of each item, ``n_bands`` bands of equal item count.

    Items ranked by count ascending (ties by id), band 0 the least popular: the pool
    manifest's ``popularity_deciles`` (samplers/stats.py) with ``n_bands = 10``.
    """
    n = item_counts.size
    band = np.empty(n, np.int64)
    band[np.argsort(item_counts, kind="stable")] = np.arange(n) * n_bands // n
    return band


def band_histogram(
    item_counts: np.ndarray, item_probs: np.ndarray, n_bands: int = 10
) -> np.ndarray:
    """float64 [n_bands]: mass of ``item_probs`` [n_items] per :func:`popularity_bands` band."""
    w = np.asarray(item_probs, np.float64)
    return (
        np.bincount(popularity_bands(item_counts, n_bands), weights=w, minlength=n_bands) / w.sum()
    )


def expected_negative_band_hist(
    item_counts: np.ndarray, alpha: float, n_bands: int = 10
) -> np.ndarray:
    """float64 [n_bands]: where a popularity sampler's negative mass falls, by band.

    P(i) ~ count(i)^alpha over the current training counts int [n_items] (0^0 = 1, so
    alpha = 0 is uniform), bands by :func:`popularity_bands` of those counts. The user's
    own positives are not excluded (a small flattening the pool does apply); pass a
    sampler's exact ``target(exclude, users)`` to :func:`band_histogram` to include it.
    """
    counts = np.asarray(item_counts, np.float64)
    return band_histogram(counts, np.power(counts, alpha), n_bands)


def negative_distribution_drift(ref_hist: list[float] | np.ndarray, now_hist: np.ndarray) -> float:
    """JS (bits) between the champion manifest's negative band shares and today's [n_bands]."""
    ref, now = np.asarray(ref_hist, np.float64), np.asarray(now_hist, np.float64)
    if ref.shape != now.shape:
        raise ValueError(
            f"the champion's manifest has {ref.size} popularity bands, the current histogram "
            f"{now.size}; compute it with n_bands={ref.size}"
        )
    return js_divergence(ref, now)
