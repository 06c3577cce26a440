"""Drift signals between the data a champion was trained on and the data arriving now.

Pure logic: frames and arrays in, numbers and a :class:`DriftReport` out. The only
file IO is :func:`write_report`. Definitions (the thresholds live in ``DriftCfg``):

* ``item_popularity_psi``: items seen in the reference are ranked by reference count
  (most popular first, ties by id) and cut into ``popularity_bins`` bins of about equal
  reference *mass* (an item goes to the bin where its mass starts, so bin 0 is the head);
  PSI of the two windows' shares over those bins. Items unseen in the reference are left
  out here (they are ``cold_item_share``), so the two signals do not double count.
* ``item_js``: Jensen-Shannon divergence (bits) of the full item distributions, cold
  items included. Two samples of one distribution still differ: ``item_js_noise_floor``
  ~ (items - 1) / (8 ln 2) * (1/N_ref + 1/N_new) is that bias for independent events
  (real ones are burstier); keep windows large enough that it stays well below the
  threshold (2,000 items, 16k new events: ~0.024 bits).
* ``cold_item_share``: share of the new window's interactions on items with no
  reference interaction; ``new_user_share``: share of the new window's users with no
  reference interaction (``new_user_interaction_share``: their share of interactions).
* ``user_activity_psi``: PSI of events per active user over log2 bins
  ``[1, 2), [2, 4), ... [2^(b-1), inf)``. Activity scales with window length, so the
  larger window is binomially thinned (exactly, in expectation) to the smaller one's
  volume first: under stationary user rates the two histograms then agree.
* ``negative_js``: JS (bits) between popularity-decile histograms of negatives; the
  deciles are :func:`popularity_bands`, the definition ``samplers/stats.py`` writes to
  the pool manifest (``statistics.popularity_deciles.negatives``). Each side bands by
  its own training counts, so a mere re-ranking of items barely moves it for a
  popularity sampler; it moves when popularity's concentration, the catalog or the
  sampler's configuration changes.
* ``performance_drop``: the largest relative drop ``(registered - now) / registered``.

An "interaction" weighs its ``count`` of events by default (``weight="rows"``: 1 each).
"""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from negsamp import figures
from negsamp.config import DriftCfg

log = logging.getLogger(__name__)

SIGNALS = (
    "item_popularity_psi",
    "item_js",
    "cold_item_share",
    "new_user_share",
    "user_activity_psi",
    "negative_js",
    "performance_drop",
)
PERFORMANCE_METRICS = ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10")


def _shares(x: np.ndarray, what: str) -> np.ndarray:
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
    smoothing: identical -> 0, disjoint supports -> log_base(2).
    """
    p, q = _shares(p, "p"), _shares(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in length: {p.size} vs {q.size}")
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        s = x > 0
        return float((x[s] * np.log(x[s] / m[s])).sum())

    return float(max(0.0, (kl(p) + kl(q)) / 2 / np.log(base)))


def item_distribution(
    items: np.ndarray, n_items: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """float64 [n_items]: share of interactions per item; ``items`` int [n] dense ids."""
    return _shares(np.bincount(items, weights=weights, minlength=n_items), "item counts")


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


def performance_decay(
    registered: dict[str, float],
    now: dict[str, float],
    metrics: tuple[str, ...] = PERFORMANCE_METRICS,
) -> dict[str, float]:
    """``{metric}_drop`` = (registered - now) / registered (> 0 is worse), and the largest as
    ``performance_drop``. Metrics missing on either side or registered <= 0 are skipped."""
    out = {
        f"{m}_drop": (registered[m] - now[m]) / registered[m]
        for m in metrics
        if m in registered and m in now and registered[m] > 0
    }
    return out | ({"performance_drop": max(out.values())} if out else {})


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
    from scipy.stats import binom

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
    distributions (JSON-ready lists) feed :class:`DriftReport`'s plots.
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
        "item_js": js_divergence(ref_items, new_items),
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
        "ref_interactions": float(rw.sum()),
        "new_interactions": float(nw.sum()),
        "ref_users": int((ref_act > 0).sum()),
        "new_users": int((new_act > 0).sum()),
    }
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


@dataclass(frozen=True)
class Signal:
    """One check: ``fired`` when ``value`` > ``threshold`` (direction "above")."""

    name: str
    value: float | None
    threshold: float | None
    fired: bool
    direction: str = "above"


def evaluate_signals(values: dict[str, float], thresholds: DriftCfg) -> list[Signal]:
    """One :class:`Signal` per name in :data:`SIGNALS`, in that order.

    A signal whose threshold is null, or whose value is missing or NaN (not measured,
    e.g. no champion yet), never fires.
    """
    out = []
    for name in SIGNALS:
        t, v = getattr(thresholds, name), values.get(name)
        v = None if v is None or not np.isfinite(v) else float(v)
        out.append(Signal(name, v, t, t is not None and v is not None and v > t))
    return out


@dataclass(frozen=True)
class DriftReport:
    """Signals, every measured value, and the distributions the plots are drawn from."""

    signals: list[Signal]
    values: dict[str, float]
    distributions: dict[str, Any] = field(default_factory=dict)

    @property
    def fired(self) -> list[str]:
        return [s.name for s in self.signals if s.fired]

    @property
    def any_fired(self) -> bool:
        return bool(self.fired)

    def to_json(self) -> str:
        """Signals, values (NaN -> null), distributions, ``fired`` and ``any_fired``."""
        values = {k: (None if v != v else v) for k, v in self.values.items()}  # NaN != NaN
        d = asdict(self) | {"values": values, "fired": self.fired, "any_fired": self.any_fired}
        return json.dumps(d, indent=2, sort_keys=True, default=_plain) + "\n"

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                s.name,
                "n/a" if s.value is None else f"{s.value:.4f}",
                "off" if s.threshold is None else f"{s.threshold:g}",
                "yes" if s.fired else "no",
            )
            for s in self.signals
        ]

    def _headline(self) -> str:
        if not self.any_fired:
            return "No drift signal fired."
        return f"{len(self.fired)} drift signal(s) fired: {', '.join(self.fired)}."

    def to_markdown(self) -> str:
        rows = [
            f"| {n} | {v} | {t} | {'**yes**' if f == 'yes' else f} |" for n, v, t, f in self._rows()
        ]
        head = ["# Drift check", "", self._headline(), "", "| signal | value | threshold | fired |"]
        return "\n".join([*head, "|---|---:|---:|:---:|", *rows]) + "\n"

    def to_html(self, plots: dict[str, bytes] | None = None) -> str:
        """The Markdown's table as HTML, with the PNG plots embedded as base64 images."""
        plots = self.plots() if plots is None else plots
        rows = "".join(
            f"<tr{' class=fired' if r[3] == 'yes' else ''}>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in r)
            + "</tr>"
            for r in self._rows()
        )
        imgs = "".join(
            f'<h2>{html.escape(k)}</h2><img alt="{html.escape(k)}" '
            f'src="data:image/png;base64,{base64.b64encode(v).decode()}">'
            for k, v in plots.items()
        )
        return (
            "<!doctype html><html><head><meta charset=utf-8><title>Drift check</title><style>"
            "td,th{padding:2px 8px}.fired{background:#fdd}</style></head><body><h1>Drift check</h1>"
            f"<p>{html.escape(self._headline())}</p><table><tr><th>signal</th><th>value</th>"
            f"<th>threshold</th><th>fired</th></tr>{rows}</table>{imgs}</body></html>\n"
        )

    @figures.serialized
    def plots(self) -> dict[str, bytes]:
        """PNG bytes per plot whose distributions are present (matplotlib Agg, no display)."""
        d = self.distributions
        out = {"item_popularity": _plot_items(d)} if "item_rank_frequency" in d else {}
        for name, (keys, xlabel, ylabel) in _BAR_PLOTS.items():
            if name in d:
                fig, (ax,) = _figure()
                _bars(ax, d[name], keys, d[name].get("edges"))
                ax.set(xlabel=xlabel, ylabel=ylabel, title=name.replace("_", " "))
                out[name] = _png(fig)
        return out


_BAR_PLOTS = {
    "user_activity": (("ref", "new"), "events per user (bin start)", "share of active users"),
    "negative_bands": (("champion", "now"), "popularity decile (0 = least)", "share of negatives"),
}


def _plain(o: Any) -> Any:
    """numpy scalars and arrays -> Python numbers and lists, for json.dumps."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


def _figure(ncols: int = 1) -> tuple[Any, list[Any]]:
    return figures.figure(ncols, 5 * ncols + 1, 4)


def _png(fig: Any) -> bytes:
    return figures.png(fig, dpi=90)


def _plot_items(d: dict[str, Any]) -> bytes:
    fig, (ax, bx) = _figure(2)
    for k, rf in d["item_rank_frequency"].items():
        ax.loglog(rf["rank"], rf["share"], label=k)
    ax.set(xlabel="item rank", ylabel="share of interactions", title="rank-frequency")
    ax.legend()
    _bars(bx, d.get("item_popularity_bins", {}), ("ref", "new"), None)
    bx.set(xlabel="reference-popularity bin (0 = head)", ylabel="share", title="PSI bins")
    return _png(fig)


def _bars(ax: Any, hist: dict[str, Any], keys: tuple[str, str], ticks: list[Any] | None) -> None:
    present = [k for k in keys if k in hist]
    for j, k in enumerate(present):
        x = np.arange(len(hist[k]))
        ax.bar(x + (j - (len(present) - 1) / 2) * 0.4, hist[k], 0.4, label=k)
        if ticks is not None:
            ax.set_xticks(x, [f"{t:g}" for t in ticks])
    ax.legend()


def make_report(
    window: dict[str, Any],
    thresholds: DriftCfg,
    negative_bands: tuple[list[float] | np.ndarray, np.ndarray] | None = None,
    performance: tuple[dict[str, float], dict[str, float]] | None = None,
) -> DriftReport:
    """Assemble a report from :func:`compare_windows`' output and, when available, the
    (champion manifest, now) negative band histograms and (registered, now) metrics."""
    values, dists = dict(window["values"]), dict(window["distributions"])
    if negative_bands is not None:
        ref, now = negative_bands
        values["negative_js"] = negative_distribution_drift(ref, now)
        dists["negative_bands"] = {"champion": list(map(float, ref)), "now": list(map(float, now))}
    if performance is not None:
        values |= performance_decay(*performance)
    return DriftReport(evaluate_signals(values, thresholds), values, dists)


def write_report(report: DriftReport, folder: str | Path) -> dict[str, Path]:
    """Write drift_report.{json,md,html} and one PNG per plot into ``folder``, atomically."""
    from negsamp.io import atomic_write

    folder = Path(folder)
    plots = report.plots()
    paths = {
        "json": folder / "drift_report.json",
        "markdown": folder / "drift_report.md",
        "html": folder / "drift_report.html",
    }
    atomic_write(paths["json"], report.to_json().encode())
    atomic_write(paths["markdown"], report.to_markdown().encode())
    atomic_write(paths["html"], report.to_html(plots).encode())
    for name, png in plots.items():
        paths[name] = folder / f"{name}.png"
        atomic_write(paths[name], png)
    log.info("drift report in %s: %s", folder, report.fired or "no signal fired")
    return paths
