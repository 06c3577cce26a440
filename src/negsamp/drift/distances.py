"""Distances between two histograms of counts: PSI and Jensen-Shannon divergence.

Both take raw count vectors, check them and normalise them to shares, so callers can
pass bin counts, weighted bincounts or already-normalised shares alike.
"""

from __future__ import annotations

import numpy as np


def _shares(x: np.ndarray, what: str) -> np.ndarray:
    """float64 [k]: ``x`` [k] divided by its sum; ValueError naming ``what`` if it is not
    a 1-D vector of non-negative counts with a positive sum."""
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or (x < 0).any() or not x.sum() > 0:
        raise ValueError(f"{what} must be a 1-D vector of non-negative counts with a positive sum")
    return x / x.sum()


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-6) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` of two count vectors [k].

    Both are normalised to shares, then smoothed as ``(s + eps) / (1 + k * eps)`` so an
    empty bin has share ~eps, not 0: a bin empty on both sides adds exactly 0, and mass
    ``a`` landing where the reference had none adds ~``a * ln(a / eps)`` (0.1 -> 1.15 at
    eps = 1e-6), deliberately large. 0 for identical shares; symmetric in its arguments.
    """
    e, a = _shares(expected, "expected"), _shares(actual, "actual")
    if e.shape != a.shape:
        raise ValueError(f"histograms differ in length: {e.size} vs {a.size} bins")
    e, a = (e + eps) / (1 + e.size * eps), (a + eps) / (1 + a.size * eps)
    return float(((a - e) * np.log(a / e)).sum())


def js_divergence(p: np.ndarray, q: np.ndarray, base: float = 2) -> float:
    """Jensen-Shannon divergence of two count vectors [k], in [0, 1] for base 2.

    Zeros are exact (0 log 0 = 0; the mixture is positive wherever p or q is), so no
    smoothing: identical -> 0, disjoint supports -> log_base(2). scipy returns the JS
    *distance*, the square root of the divergence; rounding can leave the divergence a
    hair below 0, where that root is NaN, so anything not positive is 0.
    """
    from scipy.spatial.distance import jensenshannon  # ~0.2 s to import: only when used

    p, q = _shares(p, "p"), _shares(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in length: {p.size} vs {q.size}")
    with np.errstate(invalid="ignore"):
        distance = float(jensenshannon(p, q, base=base))
    return distance**2 if distance > 0 else 0.0


def item_distribution(
    items: np.ndarray, n_items: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """float64 [n_items]: share of interactions per item; ``items`` int [n] dense ids."""
    return _shares(np.bincount(items, weights=weights, minlength=n_items), "item counts")
