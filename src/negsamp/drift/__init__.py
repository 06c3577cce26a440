"""Drift signals between the data a champion was trained on and the data arriving now.

Pure logic: frames and arrays in, numbers and a :class:`DriftReport` out; the only file
IO is :func:`write_report` (``files.py``). The thresholds live in ``DriftCfg``; each
signal is defined where it is computed:

* ``item_popularity_psi``, ``item_js``, ``cold_item_share``, ``new_user_share``,
  ``user_activity_psi``: the two windows' interactions, :mod:`negsamp.drift.windows`.
* ``negative_js``: the negatives' popularity deciles, :mod:`negsamp.drift.negatives`.
* ``performance_drop``: the champion's metrics, :mod:`negsamp.drift.performance`.

The distances they use (PSI, Jensen-Shannon) are :mod:`negsamp.drift.distances`; which
signals fired is :mod:`negsamp.drift.signals`; the report that combines them and its
JSON/Markdown/HTML renderings are :mod:`negsamp.drift.report` (plots: ``plots.py``).
"""

from __future__ import annotations

from negsamp.drift.distances import item_distribution, js_divergence, psi
from negsamp.drift.files import write_report
from negsamp.drift.negatives import (
    band_histogram,
    expected_negative_band_hist,
    negative_distribution_drift,
    popularity_bands,
)
from negsamp.drift.performance import PERFORMANCE_METRICS, performance_decay
from negsamp.drift.report import DriftReport, make_report
from negsamp.drift.signals import SIGNALS, Signal, evaluate_signals
from negsamp.drift.windows import compare_windows

__all__ = [
    "PERFORMANCE_METRICS",
    "SIGNALS",
    "DriftReport",
    "Signal",
    "band_histogram",
    "compare_windows",
    "evaluate_signals",
    "expected_negative_band_hist",
    "item_distribution",
    "js_divergence",
    "make_report",
    "negative_distribution_drift",
    "performance_decay",
    "popularity_bands",
    "psi",
    "write_report",
]
