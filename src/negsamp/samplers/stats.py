"""What a pool's negatives look like against the catalog and against the sampler's target.

Definitions used in the manifest:

* popularity deciles: items ranked by training count (ties by item id), cut into
  ``n_bands`` bands of equal item count; band 0 is the least popular;
* tail: items whose training count is below the 80th percentile of item counts
  (``counts < np.percentile(counts, 80)``; tied items at the cut are not tail);
* target: the probability that one negative drawn for a row is item ``i``, averaged over
  the rows (each sampler's :meth:`target`); KL/JS compare the drawn frequencies with it.
  KL of an empirical distribution carries a finite-sample bias of about
  ``(support - 1) / (2 draws)`` nats, reported as ``kl_noise_floor``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from negsamp import figures
from negsamp.interactions import Interactions

TAIL_PERCENTILE = 80.0


def restricted_target(weights: np.ndarray, exclude: Interactions, users: np.ndarray) -> np.ndarray:
    """float64 [n_items]: mean over rows of P(i | u) = w_i [i not a positive of u] / R_u.

    users: int [rows], the user of each row (with multiplicity). Exact for draws with
    replacement; without replacement the per-row marginals are slightly flatter.
    """
    w = np.asarray(weights, np.float64)
    m = np.bincount(np.asarray(users, np.int64), minlength=exclude.n_users).astype(np.float64)
    rows = exclude.rows()
    left = w.sum() - np.bincount(rows, weights=w[exclude.indices], minlength=exclude.n_users)
    coef = np.divide(m, left, out=np.zeros_like(m), where=(m > 0) & (left > 0))
    q = w * (coef.sum() - np.bincount(exclude.indices, weights=coef[rows], minlength=w.size))
    q = np.maximum(q, 0.0)
    return q / q.sum() if q.sum() > 0 else q


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    s = p > 0
    return float((p[s] * np.log(p[s] / q[s])).sum())


def divergences(p: np.ndarray, q: np.ndarray, draws: int) -> dict[str, Any]:
    """KL(p || q) and JS(p, q) in nats between drawn frequencies ``p`` and target ``q``."""
    outside = float(p[q <= 0].sum())
    mid = (p + q) / 2
    return {
        "kl_to_target": None if outside > 0 else _kl(p, q),
        "js_to_target": 0.5 * _kl(p, mid) + 0.5 * _kl(q, mid),
        "mass_outside_target": outside,
        "kl_noise_floor": (int((q > 0).sum()) - 1) / (2 * max(draws, 1)),
    }


def pool_statistics(
    negs: np.ndarray, train: Interactions, target: np.ndarray | None = None, n_bands: int = 10
) -> dict[str, Any]:
    """How popular the drawn negatives are, against the catalog and the target (for the manifest).

    negs: int [rows, n_neg]; target: float64 [n_items] (a sampler's ``target``) or None.
    """
    counts = train.item_counts()
    flat = np.asarray(negs).ravel()
    drawn = np.bincount(flat, minlength=train.n_items)
    total = max(int(drawn.sum()), 1)
    p = drawn / total
    band = np.empty(train.n_items, np.int64)
    band[np.argsort(counts, kind="stable")] = np.arange(train.n_items) * n_bands // train.n_items
    tail = counts < np.percentile(counts, TAIL_PERCENTILE)
    hist: dict[str, Any] = {
        "band_max_train_count": [int(counts[band == b].max(initial=0)) for b in range(n_bands)],
        "negatives": (np.bincount(band, weights=p, minlength=n_bands)).tolist(),
        "catalog_items": (np.bincount(band, minlength=n_bands) / train.n_items).tolist(),
        "catalog_interactions": (
            np.bincount(band, weights=counts, minlength=n_bands) / max(counts.sum(), 1)
        ).tolist(),
    }
    out: dict[str, Any] = {
        "distinct_items": int((drawn > 0).sum()),
        "mean_train_count_of_negatives": float(counts[flat].mean()) if flat.size else 0.0,
        "mean_train_count_of_items": float(counts.mean()),
        "entropy": float(-(p[p > 0] * np.log(p[p > 0])).sum()),
        "max_item_share": float(p.max()) if p.size else 0.0,
        "tail_definition": f"train count < {TAIL_PERCENTILE:g}th percentile of item counts",
        "tail_share_of_negatives": float(p[tail].sum()),
        "tail_share_of_catalog": float(tail.mean()),
        "popularity_deciles": hist,
    }
    if target is not None:
        q = np.asarray(target, np.float64)
        hist["target"] = np.bincount(band, weights=q, minlength=n_bands).tolist()
        out["tail_share_of_target"] = float(q[tail].sum())
        out |= divergences(p, q, total)
    return out


@figures.serialized
def plot_negative_popularity(stats: dict[str, Any], path: str | Path) -> None:
    """Write a PNG: share of negatives per popularity decile, drawn vs target vs catalog."""
    from negsamp.io import atomic_write

    hist = stats["popularity_deciles"]
    series = [("sampled negatives", hist["negatives"])]
    if "target" in hist:
        series.append(("sampler target", hist["target"]))
    series.append(("catalog interactions", hist["catalog_interactions"]))
    n = len(hist["negatives"])
    x = np.arange(n)
    fig, (ax,) = figures.figure(1, 8, 4.5)
    width = 0.8 / len(series)
    for k, (label, ys) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, ys, width, label=label)
    ax.set_xticks(x, [f"{b}\n<= {c}" for b, c in enumerate(hist["band_max_train_count"])])
    ax.set_xlabel("popularity decile (0 = least popular)  /  max training count in band")
    ax.set_ylabel("share")
    ax.set_yscale("log")
    js = stats.get("js_to_target")
    ax.set_title(
        "sampled-negative popularity vs target"
        + (f"  (JS = {js:.4f} nats)" if js is not None else "")
        + f"; tail share {stats['tail_share_of_negatives']:.3f}"
    )
    ax.legend()
    atomic_write(path, figures.png(fig))
