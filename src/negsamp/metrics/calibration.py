"""Calibration of pointwise models: expected calibration error and the reliability diagram.

A pointwise model (``loss: bce``) predicts P(positive) = sigmoid(score). Trained on
``n_neg`` sampled negatives per positive, its probabilities are calibrated (at best) for
that mix, not for the one it is evaluated on. The evaluation population here is the
sampled protocol's: each held-out positive (label 1) with its ``m`` uniformly drawn
non-interacted items (label 0). The *sampling correction* shifts every score by
``-log(m / n_neg)``, the log of the evaluation's negative-to-positive ratio over the
training's (the prior shift between the two mixes; exact for uniform training negatives,
an approximation for item-dependent samplers such as popularity).

ECE: probabilities in ``bins`` equal-width bins over [0, 1]; ECE = sum over bins of
(bin count / n) * |mean label - mean probability|.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from negsamp import figures

POINTWISE_LOSSES = ("bce",)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))  # stable for large |x|


def reliability(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """ECE and the reliability table of probabilities ``prob`` [n] against 0/1 ``label`` [n].

    Returns ``ece`` and ``bins``: one dict per non-empty bin (lower, upper, count,
    mean_probability, frequency).
    """
    prob, label = np.asarray(prob, np.float64).ravel(), np.asarray(label, np.float64).ravel()
    if prob.shape != label.shape or not prob.size:
        raise ValueError("prob and label must be non-empty and of one shape")
    b = np.minimum((prob * bins).astype(np.int64), bins - 1)
    count = np.bincount(b, minlength=bins)
    mean_p = np.bincount(b, weights=prob, minlength=bins)
    freq = np.bincount(b, weights=label, minlength=bins)
    keep = count > 0
    mean_p[keep] /= count[keep]
    freq[keep] /= count[keep]
    ece = float((count[keep] / prob.size * np.abs(freq[keep] - mean_p[keep])).sum())
    table = [
        {
            "lower": i / bins,
            "upper": (i + 1) / bins,
            "count": int(count[i]),
            "mean_probability": float(mean_p[i]),
            "frequency": float(freq[i]),
        }
        for i in np.flatnonzero(keep).tolist()
    ]
    return {"ece": ece, "bins": table}


def calibration(
    pos_scores: np.ndarray, neg_scores: np.ndarray, n_neg_train: int, bins: int = 10
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, report) of held-out positives' scores [R] and their candidates' [R, m].

    metrics: ``ece`` (raw sigmoid), ``ece_corrected`` (scores shifted by -log(m / n_neg)),
    ``ece_mean_probability`` / ``ece_corrected_mean_probability`` against the base rate
    1 / (1 + m) (over- or under-confidence at a glance); report: both reliability tables.
    """
    neg_scores = np.asarray(neg_scores, np.float64)
    m = neg_scores.shape[1]
    scores = np.concatenate([np.asarray(pos_scores, np.float64).ravel(), neg_scores.ravel()])
    label = np.concatenate([np.ones(neg_scores.shape[0]), np.zeros(neg_scores.size)])
    shift = float(np.log(m / n_neg_train))
    raw = reliability(sigmoid(scores), label, bins)
    fixed = reliability(sigmoid(scores - shift), label, bins)
    metrics = {
        "ece": raw["ece"],
        "ece_corrected": fixed["ece"],
        "ece_mean_probability": float(sigmoid(scores).mean()),
        "ece_corrected_mean_probability": float(sigmoid(scores - shift).mean()),
    }
    report = {
        "population": f"held-out positives with {m} uniform non-interacted candidates each",
        "base_rate": 1.0 / (1 + m),
        "n_neg_train": n_neg_train,
        "shift": -shift,
        "raw": raw,
        "corrected": fixed,
    }
    return metrics, report


@figures.serialized
def reliability_png(report: dict[str, Any]) -> bytes:
    """The reliability diagram of a :func:`calibration` report, raw and corrected: observed
    frequency against mean predicted probability per bin (log axes: most pairs are negatives);
    for a report without one (``pointwise`` false) a figure saying why."""
    fig, (ax,) = figures.figure(1, 6, 5)
    if not report.get("pointwise", True):
        ax.text(0.5, 0.5, f"no reliability diagram: {report.get('why')}", ha="center")
        ax.set_axis_off()
        return figures.png(fig)
    lo = 0.5 / sum(b["count"] for b in report["raw"]["bins"])
    for key, label in (("raw", "sigmoid(score)"), ("corrected", "sampling-corrected")):
        bins = report[key]["bins"]
        p = [max(b["mean_probability"], lo) for b in bins]
        f = [max(b["frequency"], lo) for b in bins]
        ax.plot(p, f, "o-", label=f"{label}: ECE {report[key]['ece']:.4f}")
    ax.plot([lo, 1], [lo, 1], "k--", lw=1, label="perfect calibration")
    ax.axhline(report["base_rate"], color="grey", lw=0.8, ls=":", label="base rate")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mean predicted probability (bin)")
    ax.set_ylabel("observed frequency of positives")
    ax.set_title("reliability diagram (held-out positives + sampled candidates)")
    ax.legend(fontsize=8)
    return figures.png(fig)
