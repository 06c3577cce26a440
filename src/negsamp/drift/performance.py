"""The ``performance_drop`` signal: how much worse the champion scores now than when it
was registered."""

from __future__ import annotations

PERFORMANCE_METRICS = ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10")


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
