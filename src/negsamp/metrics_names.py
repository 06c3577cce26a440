"""Metric names shared by metrics.json, MLflow and the CLI (MLflow keys cannot hold ``@``)."""

from __future__ import annotations

SAMPLED = ("hr", "ndcg")
FULL = ("recall", "ndcg")


def sampled(metric: str, k: int) -> str:
    return f"sampled_{metric}_{k}"


def full(metric: str, k: int) -> str:
    return f"full_{metric}_{k}"


def headline_names(ks: tuple[int, ...] | list[int]) -> list[str]:
    """Every headline metric name evaluate writes for these K, in display order."""
    names = [sampled(m, k) for k in ks for m in SAMPLED]
    names += [full(m, k) for k in ks for m in FULL]
    return names
