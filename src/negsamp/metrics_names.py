"""Metric names shared by metrics.json, MLflow and the CLI (MLflow keys cannot hold ``@``).

Families, each a name prefix:

- ``sampled_``: the NCF protocol, the held-out item among its fixed sampled candidates.
- ``full_``: the exact protocol, ranked against every item the user has not trained on.
- ``rescaled_`` / ``bv_``: estimates of the ``full_`` value from the sampled ranks
  (rank rescaling; Krichene & Rendle's bias-variance correction).
- beyond accuracy (no prefix): ``coverage_K``, ``arp_K``, ``gini_K``, ``longtail_K``,
  ``novelty_K`` of the full-ranking top-K lists.

- calibration (pointwise models): ``ece``, ``ece_corrected`` (:mod:`negsamp.metrics.calibration`).
- embedding probes (with item features): ``probe_<family>_f1`` and its ``_random`` and
  ``_popularity`` baselines (:mod:`negsamp.metrics.probe`).

Metrics that depend on K end in ``_K``; ``*_mrr`` does not. The nested reports (``ci.json``,
``corrected.json``) key on these names too: ``full_recall_10.ci_low``, ``full_recall_10.bv``.
"""

from __future__ import annotations

SAMPLED = ("hr", "ndcg")
FULL = ("recall", "precision", "ndcg", "map")
CORRECTED = ("recall", "ndcg")  # the full_ metrics that the sampled ranks estimate, per K
ESTIMATORS = ("rescaled", "bv")  # estimates of full_ metrics from the sampled ranks
BEYOND = ("coverage", "arp", "gini", "longtail", "novelty")
CATALOG_LEVEL = ("coverage", "gini")  # one number per run, not a mean over users: no CI


def is_catalog_level(name: str) -> bool:
    """``coverage_10`` and ``gini_10`` are one number per model: no per-user value."""
    return name.rsplit("_", 1)[0] in CATALOG_LEVEL


def _name(prefix: str, metric: str, k: int | None) -> str:
    return f"{prefix}{metric}" if k is None else f"{prefix}{metric}_{k}"


def sampled(metric: str, k: int | None = None) -> str:
    return _name("sampled_", metric, k)


def full(metric: str, k: int | None = None) -> str:
    return _name("full_", metric, k)


def corrected(estimator: str, metric: str, k: int | None = None) -> str:
    """``corrected("bv", "recall", 10)`` -> ``bv_recall_10``, the estimate of ``full_recall_10``."""
    return _name(f"{estimator}_", metric, k)


def beyond(metric: str, k: int) -> str:
    return _name("", metric, k)


def sampled_names(ks: tuple[int, ...] | list[int]) -> list[str]:
    return [sampled(m, k) for k in ks for m in SAMPLED] + [sampled("mrr")]


def full_names(ks: tuple[int, ...] | list[int]) -> list[str]:
    return [full(m, k) for k in ks for m in FULL] + [full("mrr")]


def corrected_names(ks: tuple[int, ...] | list[int], estimator: str) -> list[str]:
    return [corrected(estimator, m, k) for k in ks for m in CORRECTED] + [
        corrected(estimator, "mrr")
    ]


def beyond_names(ks: tuple[int, ...] | list[int]) -> list[str]:
    return [beyond(m, k) for k in ks for m in BEYOND]


def headline_names(ks: tuple[int, ...] | list[int]) -> list[str]:
    """Every headline metric name evaluate writes for these K, in display order."""
    names = sampled_names(ks) + full_names(ks)
    for est in ESTIMATORS:
        names += corrected_names(ks, est)
    return names + beyond_names(ks)


def estimated_by_sampling(ks: tuple[int, ...] | list[int]) -> list[tuple[str, str]]:
    """(full_ name, sampled_ name) pairs: what the sampled protocol stands in for."""
    pairs = [(full(m, k), sampled("hr" if m == "recall" else m, k)) for k in ks for m in CORRECTED]
    return pairs + [(full("mrr"), sampled("mrr"))]
