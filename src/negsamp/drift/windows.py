"""Data drift: the signals that compare the interactions of two windows.

* ``item_popularity_psi``: items seen in the reference are ranked by reference count
  (most popular first, ties by id) and cut into ``popularity_bins`` bins of about equal
  reference *mass* (an item goes to the bin where its mass starts, so bin 0 is the head);
  PSI of the two windows' shares over those bins. Items unseen in the reference are left
  out here (they are ``cold_item_share``), so the two signals do not double count.
* ``item_js``: Jensen-Shannon divergence (bits) of the full item distributions, cold
  items included, less what sampling alone gives. Two samples of one distribution still
  differ: ``item_js_noise_floor`` ~ (items - 1) / (8 ln 2) * (1/N_ref + 1/N_new) is that
  bias for independent events (real ones are burstier; 2,000 items, 16k new events: ~0.024
  bits; 548 new events, a day of the synthetic default: ~0.66, above the plug-in value).
  ``item_js`` is ``max(0, item_js_raw - item_js_noise_floor)``, ``item_js_raw`` the plug-in
  divergence: without the correction a quiet day's small window "drifted" by 0.3 bits
  and retrained every day (issue #13's 30-day simulation). A window too small to tell
  drift from noise gives 0; the other signals (PSI over mass bins, cold items) still
  speak, and the new window grows until the next retrain.
* ``cold_item_share``: share of the new window's interactions on items with no
  reference interaction; ``new_user_share``: share of the new window's users with no
  reference interaction (``new_user_interaction_share``: their share of interactions).
* ``user_activity_psi``: PSI of events per active user over log2 bins
  ``[1, 2), [2, 4), ... [2^(b-1), inf)``. Activity scales with window length, so the
  larger window is binomially thinned (exactly, in expectation) to the smaller one's
  volume first: under stationary user rates the two histograms then agree.

An "interaction" weighs its ``count`` of events by default (``weight="rows"``: 1 each).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl

from negsamp.drift.distances import js_divergence, psi


def _arrays(
    df: pl.DataFrame, weight: str, n_items: int, which: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """user int64 [n], item int64 [n], weight float64 [n] of one window, checked."""
    if df.height == 0:
        raise ValueError(f"the {which} window has no interactions; nothing to compare")
    u, i = df["user"].to_numpy().astype(np.int64), df["item"].to_numpy().astype(np.int64)
    if u.min() < 0 or i.min() < 0 or i.max() >= n_items:
        raise ValueError(
            f"the {which} window has ids outside user >= 0, 0 <= item < n_items={n_items}; "
            "pass dense ids and the item count of the newest snapshot"
        )
    w = df["count"].to_numpy() if weight == "count" and "count" in df.columns else None
    return u, i, np.ones(df.height) if w is None else w.astype(np.float64)


def _mass_bins(ref_counts: np.ndarray, n_bins: int) -> np.ndarray:
    """int64 [n_items]: equal-reference-mass bin, head = 0; -1 for items unseen in ref."""
    order = np.argsort(-ref_counts, kind="stable")
    c = ref_counts[order]
    start = np.floor((np.cumsum(c) - c) * n_bins / c.sum()).astype(np.int64)
    out = np.empty(ref_counts.size, np.int64)
    out[order] = np.minimum(start, n_bins - 1)
    return np.where(ref_counts > 0, out, -1)


def _activity_hist(events: np.ndarray, keep: float, edges: np.ndarray) -> np.ndarray:
    """float64 [bins]: expected users per bin after keeping each event with prob ``keep``."""
    from scipy.stats import binom  # ~0.7 s to import: only when a window is compared

    values, users = np.unique(events[events > 0], return_counts=True)
    cdf = binom.cdf(edges[None, :] - 1, values[:, None], keep)  # P(K < edge)
    return users @ (cdf[:, 1:] - cdf[:, :-1])


def _rank_frequency(shares: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    s = np.sort(shares[shares > 0])[::-1]
    rank = np.unique(np.geomspace(1, s.size, points).astype(np.int64))
    return {"rank": rank.tolist(), "share": s[rank - 1].tolist()}


def compare_windows(
    ref: pl.DataFrame,
    new: pl.DataFrame,
    n_items: int,
    *,
    popularity_bins: int = 10,
    activity_bins: int = 10,
    weight: Literal["count", "rows"] = "count",
) -> dict[str, Any]:
    """Data drift of window ``new`` against ``ref`` (frames: user/item Int32 dense ids, count).

    Ids are stable across snapshots (new users and items get ids past the reference's).
    Returns ``{"values": {signal or info name: float}, "distributions": {...}}``; the
    distributions (JSON-ready lists) feed :class:`~negsamp.drift.report.DriftReport`'s plots.
    """
    ru, ri, rw = _arrays(ref, weight, n_items, "reference")
    nu, ni, nw = _arrays(new, weight, n_items, "new")
    n_users = int(max(ru.max(), nu.max())) + 1
    ref_items = np.bincount(ri, weights=rw, minlength=n_items)
    new_items = np.bincount(ni, weights=nw, minlength=n_items)
    seen = ref_items > 0
    bins = _mass_bins(ref_items, popularity_bins)
    ref_bins = np.bincount(bins[seen], weights=ref_items[seen], minlength=popularity_bins)
    new_bins = np.bincount(bins[seen], weights=new_items[seen], minlength=popularity_bins)
    ref_act = np.bincount(ru, weights=rw, minlength=n_users)
    new_act = np.bincount(nu, weights=nw, minlength=n_users)
    newcomer = (new_act > 0) & (ref_act == 0)
    volume = min(rw.sum(), nw.sum())
    edges = np.r_[2.0 ** np.arange(activity_bins), np.inf]
    ref_hist = _activity_hist(ref_act, volume / rw.sum(), edges)
    new_hist = _activity_hist(new_act, volume / nw.sum(), edges)
    values = {
        "item_popularity_psi": psi(ref_bins, new_bins) if new_bins.sum() > 0 else float("nan"),
        "item_js_raw": js_divergence(ref_items, new_items),
        "cold_item_share": float(new_items[~seen].sum() / nw.sum()),
        "new_user_share": float(newcomer.sum() / (new_act > 0).sum()),
        "new_user_interaction_share": float(new_act[newcomer].sum() / nw.sum()),
        "user_activity_psi": psi(ref_hist, new_hist),
        "item_js_noise_floor": float(
            (((ref_items > 0) | (new_items > 0)).sum() - 1)
            * (1 / rw.sum() + 1 / nw.sum())
            / (8 * np.log(2))
        ),
        "cold_items": int(((new_items > 0) & ~seen).sum()),
        "item_js": 0.0,  # set below: the raw divergence less its noise floor
        "ref_interactions": float(rw.sum()),
        "new_interactions": float(nw.sum()),
        "ref_users": int((ref_act > 0).sum()),
        "new_users": int((new_act > 0).sum()),
    }
    values["item_js"] = max(0.0, values["item_js_raw"] - values["item_js_noise_floor"])
    ref_s, new_s = ref_items / ref_items.sum(), new_items / new_items.sum()
    distributions = {
        "item_rank_frequency": {"ref": _rank_frequency(ref_s), "new": _rank_frequency(new_s)},
        "item_popularity_bins": {
            "ref": (ref_bins / ref_bins.sum()).tolist(),
            "new": (new_bins / new_bins.sum() if new_bins.sum() > 0 else new_bins).tolist(),
        },
        "user_activity": {
            "edges": edges[:-1].tolist(),
            "ref": (ref_hist / ref_hist.sum()).tolist(),
            "new": (new_hist / new_hist.sum()).tolist(),
        },
    }
    return {"values": values, "distributions": distributions}
