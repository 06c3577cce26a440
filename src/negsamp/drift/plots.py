"""PNG plots of a drift report's distributions (matplotlib Agg, no display)."""

from __future__ import annotations

from typing import Any

import numpy as np

from negsamp import figures

# distribution name -> (the two histograms' keys, x label, y label)
_BAR_PLOTS = {
    "user_activity": (("ref", "new"), "events per user (bin start)", "share of active users"),
    "negative_bands": (("champion", "now"), "popularity decile (0 = least)", "share of negatives"),
}


@figures.serialized
def render(distributions: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes per plot whose distributions are present in ``distributions``."""
    d = distributions
    out = {"item_popularity": _plot_items(d)} if "item_rank_frequency" in d else {}
    for name, (keys, xlabel, ylabel) in _BAR_PLOTS.items():
        if name in d:
            fig, (ax,) = _figure()
            _bars(ax, d[name], keys, d[name].get("edges"))
            ax.set(xlabel=xlabel, ylabel=ylabel, title=name.replace("_", " "))
            out[name] = _png(fig)
    return out


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
