"""Beyond accuracy: how the full-ranking top-K lists spread over the catalog.

Samplers shift popularity bias (a popularity-weighted sampler pushes popular items
down), so every run reports, for every K, from each evaluated user's top-K list:

- ``coverage_K``: share of the catalog recommended to at least one user.
- ``arp_K``: average recommended popularity (Abdollahpouri et al. 2019): the mean over
  users of the mean training popularity (users who have the item) of their list.
- ``gini_K``: Gini index of how often each catalog item is recommended (0: every item
  equally often; towards 1: a few items take every slot).
- ``longtail_K``: mean share of a user's list that lies in the tail popularity band.
- ``novelty_K``: mean self-information -log2 p(i) of the listed items, p(i) the share of
  users who have item i in training (counted as at least one, so it stays finite).

A list shorter than K (fewer than K unseen items) is scored over what it holds.
Coverage and Gini describe the run as a whole; the other three are per-user means.
"""

from __future__ import annotations

import numpy as np

from negsamp.metrics_names import beyond

BAND_NAMES = ("head", "torso", "tail")
TAIL = 2


def item_bands(counts: np.ndarray, shares: tuple[float, float]) -> np.ndarray:
    """int8 [n_items]: 0 head, 1 torso, 2 tail by training popularity ``counts``.

    Items sorted most popular first (ties by id): an item is head while the items
    before it hold less than ``shares[0]`` of all training interactions, torso while
    they hold less than ``shares[1]``, tail after that (the least popular items,
    together about ``1 - shares[1]`` of the interactions, and every unseen item).
    """
    counts = np.asarray(counts, np.float64)
    order = np.lexsort((np.arange(counts.size), -counts))
    before = (np.cumsum(counts[order]) - counts[order]) / max(counts.sum(), 1.0)
    band = np.empty(counts.size, np.int8)
    band[order] = np.where(before < shares[0], 0, np.where(before < shares[1], 1, 2))
    return band


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative ``counts`` (0 when all equal or all zero)."""
    c = np.sort(np.asarray(counts, np.float64))
    n, total = c.size, c.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(((2 * np.arange(1, n + 1) - n - 1) * c).sum() / (n * total))


def user_metrics(
    top: np.ndarray,
    ks: tuple[int, ...],
    counts: np.ndarray,
    bands: np.ndarray,
    n_users: int,
) -> dict[str, np.ndarray]:
    """float64 [U] per user: ``arp_K``, ``longtail_K``, ``novelty_K`` for every K.

    top: int [U, kmax] items best first, -1 pads; counts: int [n_items] training users
    per item; bands: int8 [n_items] from :func:`item_bands`; n_users: users in training.
    """
    counts = np.asarray(counts, np.float64)
    info = -np.log2(np.maximum(counts, 1.0) / max(n_users, 1))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        lst = top[:, :k]
        valid = lst >= 0
        safe = np.where(valid, lst, 0)
        n = np.maximum(valid.sum(1), 1)
        out[beyond("arp", k)] = np.where(valid, counts[safe], 0.0).sum(1) / n
        out[beyond("longtail", k)] = (valid & (bands[safe] == TAIL)).sum(1) / n
        out[beyond("novelty", k)] = np.where(valid, info[safe], 0.0).sum(1) / n
    return out


def catalog_metrics(top: np.ndarray, ks: tuple[int, ...], n_items: int) -> dict[str, float]:
    """``coverage_K`` and ``gini_K`` of all users' top-K lists together."""
    out: dict[str, float] = {}
    for k in ks:
        lst = top[:, :k]
        recs = np.bincount(lst[lst >= 0], minlength=n_items)
        out[beyond("coverage", k)] = float((recs > 0).sum() / max(n_items, 1))
        out[beyond("gini", k)] = gini(recs)
    return out
