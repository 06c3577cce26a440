"""The comparison plots of a sweep, as PNG bytes (matplotlib Agg, no display).

``by_sampler.png``: sampled HR@K and full NDCG@K per configuration with CIs;
``n_neg.png``: the registry metric against negatives per positive (log scale), a line per
sampler and model; ``tradeoff.png``: full NDCG@K against ARP@K and long-tail share@K;
``train_time.png``: training seconds per configuration. Overlays across configurations
(one chart per metric, a line or bar per configuration; what `dvc plots show` shows, as
images, so its page needs no network, issue #15): ``at_k.png``, full NDCG@K and sampled
HR@K over K; ``by_popularity.png``, full NDCG@K by popularity band of the held-out item
(bands in their order, head to tail).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from negsamp.figures import figure as _figure
from negsamp.figures import png as _png
from negsamp.figures import serialized
from negsamp.sweep.table import Comparison, Row


def _colors(rows: tuple[Row, ...]) -> dict[str, Any]:
    from matplotlib import colormaps

    names = sorted({r.sampler for r in rows})
    cmap = colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _bars(ax: Any, c: Comparison, col: str, colors: dict[str, Any]) -> None:
    rows = c.rows
    x = np.arange(len(rows))
    vals = np.array([r.values.get(col, np.nan) for r in rows])
    err = np.array(
        [
            [v - r.ci[col][0], r.ci[col][1] - v] if col in r.ci else [0.0, 0.0]
            for r, v in zip(rows, vals, strict=True)
        ]
    ).T
    ax.bar(x, vals, color=[colors[r.sampler] for r in rows], yerr=err, capsize=3)
    ax.set_xticks(x, [r.config for r in rows], rotation=45, ha="right")
    ax.set_ylabel(col)
    ax.set_title(col.replace("_", " "))


def by_sampler(c: Comparison) -> bytes:
    colors = _colors(c.rows)
    fig, axes = _figure(2, width=max(9.0, 1.1 * len(c.rows) + 4))
    for ax, col in zip(axes, (f"sampled_hr_{c.k}", f"full_ndcg_{c.k}"), strict=True):
        _bars(ax, c, col, colors)
    return _png(fig)


def n_neg(c: Comparison) -> bytes:
    """A line per (sampler, model); in_batch (no n_neg) is drawn as a horizontal line."""
    fig, (ax,) = _figure()
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in c.rows:
        groups[
            r.sampler if len({x.model for x in c.rows}) == 1 else f"{r.sampler} / {r.model}"
        ].append(r)
    colors = _colors(c.rows)
    has_x = [r.n_neg for r in c.rows if r.n_neg is not None]
    for label, rows in sorted(groups.items()):
        pts = sorted((r.n_neg, r.values[c.metric]) for r in rows if r.n_neg is not None)
        color = colors[rows[0].sampler]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=label, color=color)
        for r in rows:
            if r.n_neg is None:
                ax.axhline(r.values[c.metric], ls="--", color=color, label=f"{label} (batch)")
    if has_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(has_x)), [str(x) for x in sorted(set(has_x))])
    ax.set_xlabel("negatives per positive (log scale)")
    ax.set_ylabel(c.metric)
    ax.set_title(f"{c.metric} against n_neg")
    ax.legend(fontsize="small")
    return _png(fig)


def tradeoff(c: Comparison) -> bytes:
    fig, axes = _figure(2)
    colors = _colors(c.rows)
    y = f"full_ndcg_{c.k}"
    for ax, x, label in zip(
        axes,
        (f"arp_{c.k}", f"longtail_{c.k}"),
        (f"ARP@{c.k} (popularity bias)", f"long-tail share@{c.k}"),
        strict=True,
    ):
        for r in c.rows:
            if x in r.values and y in r.values:
                ax.scatter(r.values[x], r.values[y], color=colors[r.sampler], label=r.sampler)
                ax.annotate(r.config, (r.values[x], r.values[y]), fontsize="x-small")
        ax.set_xlabel(label)
        ax.set_ylabel(y)
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    axes[0].legend(uniq.values(), uniq.keys(), fontsize="small")
    axes[0].set_title("accuracy vs popularity bias")
    axes[1].set_title("accuracy vs long-tail exposure")
    return _png(fig)


def train_time(c: Comparison) -> bytes:
    fig, (ax,) = _figure(width=max(7.0, 0.8 * len(c.rows) + 3))
    colors = _colors(c.rows)
    x = np.arange(len(c.rows))
    ax.bar(x, [r.train_seconds for r in c.rows], color=[colors[r.sampler] for r in c.rows])
    ax.set_xticks(x, [r.config for r in c.rows], rotation=45, ha="right")
    ax.set_ylabel("training seconds")
    ax.set_title("training time per configuration")
    return _png(fig)


def at_k(curves: dict[str, Any]) -> bytes:
    """``curves``: configuration -> its at_k table (polars: k, full_ndcg, sampled_hr, ...)."""
    from matplotlib import colormaps

    fig, axes = _figure(2, width=11.0)
    cmap = colormaps["tab10"]
    for ax, col in zip(axes, ("full_ndcg", "sampled_hr"), strict=True):
        for i, (name, t) in enumerate(curves.items()):
            if col in t.columns:
                ax.plot(t["k"], t[col], marker="o", label=name, color=cmap(i % 10))
        ax.set_xlabel("K")
        ax.set_ylabel(f"{col}@K")
        ax.set_title(f"{col.replace('_', ' ')}@K, every configuration")
    axes[0].legend(fontsize="small")
    return _png(fig)


def by_popularity(bands: dict[str, Any], k: int) -> bytes:
    """``bands``: configuration -> its by_item_popularity table (band, full_ndcg, ...)."""
    fig, (ax,) = _figure(width=max(7.0, 1.2 * len(bands) + 4))
    names = list(bands)
    order = list(next(iter(bands.values()))["band"]) if bands else []
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(order))
    for i, name in enumerate(names):
        t = dict(zip(bands[name]["band"], bands[name]["full_ndcg"], strict=True))
        ax.bar(x + i * width, [t.get(b, np.nan) for b in order], width, label=name)
    ax.set_xticks(x + width * (len(names) - 1) / 2, order)
    ax.set_ylabel(f"full NDCG@{k}")
    ax.set_title(f"full NDCG@{k} by popularity band of the held-out item")
    ax.legend(fontsize="small")
    return _png(fig)


@serialized
def all_plots(
    c: Comparison, curves: dict[str, Any] | None = None, bands: dict[str, Any] | None = None
) -> dict[str, bytes]:
    out = {
        "by_sampler.png": by_sampler(c),
        "n_neg.png": n_neg(c),
        "tradeoff.png": tradeoff(c),
        "train_time.png": train_time(c),
    }
    if curves:
        out["at_k.png"] = at_k(curves)
    if bands:
        out["by_popularity.png"] = by_popularity(bands, c.k)
    return out
