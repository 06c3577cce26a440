"""The verdict: which signals fired, each value against its ``DriftCfg`` threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from negsamp.config import DriftCfg

SIGNALS = (
    "item_popularity_psi",
    "item_js",
    "cold_item_share",
    "new_user_share",
    "user_activity_psi",
    "negative_js",
    "performance_drop",
)


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
