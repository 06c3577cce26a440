"""The comparison table as text: rows of cells, Markdown and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable

from negsamp.sweep.protocols import summary
from negsamp.sweep.table import Comparison, Row

PLOTS = {
    "by_sampler.png": "Headline metrics by configuration (bootstrap CIs)",
    "n_neg.png": "The registry metric against negatives per positive",
    "tradeoff.png": "Accuracy against popularity bias",
    "train_time.png": "Training time per configuration",
    "at_k.png": "Full NDCG@K and sampled HR@K over K, every configuration",
    "by_popularity.png": "Full NDCG by popularity band of the held-out item",
}


def _rate(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.3g}{unit}/s"
    return f"{x:.3g}/s"


def _value(row: Row, col: str, compact: bool = False) -> str:
    v = row.values.get(col)
    if v is None:
        return "-"
    lo, hi = row.ci.get(col, (None, None))
    if lo is None:
        return f"{v:.4f}"
    return f"{v:.4f} ±{(hi - lo) / 2:.4f}" if compact else f"{v:.4f} [{lo:.4f}, {hi:.4f}]"


def _vs_best(row: Row, compact: bool = False) -> str:
    if row.best:
        return "chosen"
    if row.vs_best is None:
        return "-"
    t = row.vs_best
    if compact:
        return f"{t['diff']:+.4f} p={t['p_value']:.2g}"
    return f"{t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}] p={t['p_value']:.3g}"


def valid_column(c: Comparison) -> str:
    """The header of the validation values the choice was made on."""
    return f"valid {c.monitor}" if c.monitor else "valid"


def extra_columns(c: Comparison) -> list[tuple[str, str]]:
    """(header, key) of the optional columns some row has: ECE raw / corrected (pointwise
    models) and the probe's macro-F1 per attribute family (random, popularity baselines)."""
    keys = set().union(*(r.values for r in c.rows)) if c.rows else set()
    out = [("ECE / corrected", "ece")] if "ece" in keys else []
    fams = sorted(
        k[len("probe_") : -len("_f1")] for k in keys if k.startswith("probe_") and k.endswith("_f1")
    )
    return out + [(f"probe {f} F1 (random, pop.)", f"probe_{f}_f1") for f in fams]


def _extra_cell(r: Row, key: str) -> str:
    v = r.values
    if key not in v:
        return "-"
    if key == "ece":
        return f"{v['ece']:.3f} / {v.get('ece_corrected', float('nan')):.3f}"
    base = (v.get(f"{key}_random", float("nan")), v.get(f"{key}_popularity", float("nan")))
    return f"{v[key]:.3f} ({base[0]:.3f}, {base[1]:.3f})"


def header(c: Comparison) -> list[str]:
    return [
        "#",
        "configuration",
        "sampler",
        "model",
        "n_neg",
        valid_column(c),
        *c.columns,
        f"{c.metric} vs chosen",
        f"ARP@{c.k}",
        f"long-tail@{c.k}",
        *(h for h, _ in extra_columns(c)),
        "train s",
        "epochs",
        "train pairs",
        "sampling",
    ]


def cells(c: Comparison, compact: bool = False) -> list[list[str]]:
    """One list of strings per row, in :func:`header`'s order.

    ``compact`` (a terminal): a CI as ± its half-width, the paired test as diff and p.
    """
    out = []
    extra = extra_columns(c)
    for r in c.rows:
        arp, tail = r.values.get(f"arp_{c.k}"), r.values.get(f"longtail_{c.k}")
        out.append(
            [
                str(r.rank),
                r.config,
                r.sampler,
                r.model,
                "batch" if r.n_neg is None else str(r.n_neg),
                "-" if r.valid is None else f"{r.valid:.4f}",
                *(_value(r, col, compact) for col in c.columns),
                _vs_best(r, compact),
                "-" if arp is None else f"{arp:.1f}",
                "-" if tail is None else f"{tail:.3f}",
                *(_extra_cell(r, key) for _, key in extra),
                f"{r.train_seconds:.1f}",
                str(r.epochs),
                _rate(r.train_pairs_per_second),
                _rate(r.negatives_per_second),
            ]
        )
    return out


def _choice(c: Comparison) -> str:
    """Which split chose, and what that means for the rows."""
    line = f"{c.choice}. Chosen configuration: `{c.best.config}`."
    if c.chosen_on != "valid":
        return line
    out = [
        line,
        f"Rows are ranked by `{valid_column(c)}`, the value early stopping watched at the "
        "epoch whose weights were kept (higher is better; ties by name).",
    ]
    unchosen = [f"`{r.config}`" for r in c.rows if r.valid is None]
    if unchosen:
        out.append(f"No finite validation value, so not chosen: {', '.join(unchosen)}.")
    return " ".join(out)


def _legend(c: Comparison) -> list[str]:
    better = "higher" if c.greater_is_better else "lower"
    return [
        _choice(c),
        f"Metric cells: test value [{c.level:.0%} bootstrap CI over test users]. "
        f"`{c.metric} vs chosen` ({better} is better): this configuration minus the chosen "
        "one on the same test users, paired bootstrap CI and sign-flip permutation p-value.",
        f"ARP@{c.k}: mean training popularity of the top-{c.k} items (lower = less "
        f"popularity bias); long-tail@{c.k}: share of them from the long tail. "
        "Train pairs: positive-negative pairs per second; sampling: pool negatives per "
        "second (batch-side samplers draw during training).",
        *(
            [
                "ECE: expected calibration error of sigmoid(score) on held-out positives and their "
                "sampled candidates; corrected: scores shifted by -log(candidates / n_neg)."
            ]
            if any(k == "ece" for _, k in extra_columns(c))
            else []
        ),
        *(
            [
                "Probe F1: macro-F1 of a logistic-regression probe predicting the family's values "
                "from held-out items' embeddings (random embeddings, popularity alone)."
            ]
            if any(k.startswith("probe_") for _, k in extra_columns(c))
            else []
        ),
    ]


def _protocols(c: Comparison) -> list[str]:
    return summary(list(c.reversals), c.metric, c.level)


def markdown(
    c: Comparison, title: str = "Sweep comparison", images: Iterable[str] | None = None
) -> str:
    """The page as Markdown; ``images`` (default: every plot) are the PNGs beside it."""
    shown = set(PLOTS if images is None else images)
    head = header(c)
    lines = [f"# {title}", "", *(f"{x}  " for x in _legend(c)), ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---:" if h in ("#", "n_neg") else "---" for h in head) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells(c)]
    lines += ["", "## Sampled and full-ranking protocols", ""]
    lines += [f"{x}  " if not x.startswith("- ") else x for x in _protocols(c)]
    lines += ["", *(f"![{alt}]({n})" for n, alt in PLOTS.items() if n in shown), ""]
    return "\n".join(lines)


def to_html(
    c: Comparison, title: str = "Sweep comparison", images: dict[str, bytes] | None = None
) -> str:
    """A standalone page. ``images`` (file name -> PNG bytes) are embedded as data URIs, so
    the page shows them wherever it is opened (MLflow's artifact viewer showed four broken
    images for the relative links, issue #15); without them it links the PNGs beside it."""
    esc = html.escape
    images = images or {}

    def src(name: str) -> str:
        if name in images:
            return "data:image/png;base64," + base64.b64encode(images[name]).decode()
        return esc(name)

    th = "".join(f"<th>{esc(h)}</th>" for h in header(c))
    body = "".join(
        f"<tr{' class=best' if r.best else ''}>"
        + "".join(f"<td>{esc(x)}</td>" for x in row)
        + "</tr>"
        for r, row in zip(c.rows, cells(c), strict=True)
    )
    figs = "".join(
        f'<figure><img src="{src(n)}" alt="{esc(a)}"><figcaption>{esc(a)}</figcaption></figure>'
        for n, a in PLOTS.items()
        if not images or n in images
    )
    legend = "".join(f"<p>{esc(x).replace('`', '')}</p>" for x in _legend(c))
    proto = "".join(f"<p>{esc(x).replace('`', '')}</p>" for x in _protocols(c))
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "tr.best{background:#e8f5e9}img{max-width:900px}"
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{esc(title)}</title>"
        f"<style>{style}</style></head><body><h1>{esc(title)}</h1>{legend}"
        f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
        f"<h2>Sampled and full-ranking protocols</h2>{proto}{figs}"
        "</body></html>\n"
    )
