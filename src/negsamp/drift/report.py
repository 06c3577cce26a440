"""The drift report: every signal's verdict, the measured values and the distributions
behind them, rendered as JSON, Markdown and HTML."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from negsamp.config import DriftCfg
from negsamp.drift.negatives import negative_distribution_drift
from negsamp.drift.performance import performance_decay
from negsamp.drift.plots import render
from negsamp.drift.signals import Signal, evaluate_signals


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

    def plots(self) -> dict[str, bytes]:
        """PNG bytes per plot whose distributions are present (matplotlib Agg, no display)."""
        return render(self.distributions)


def _plain(o: Any) -> Any:
    """numpy scalars and arrays -> Python numbers and lists, for json.dumps."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


def make_report(
    window: dict[str, Any],
    thresholds: DriftCfg,
    negative_bands: tuple[list[float] | np.ndarray, np.ndarray] | None = None,
    performance: tuple[dict[str, float], dict[str, float]] | None = None,
) -> DriftReport:
    """Assemble a report from :func:`~negsamp.drift.windows.compare_windows`' output and,
    when available, the (champion manifest, now) negative band histograms and
    (registered, now) metrics."""
    values, dists = dict(window["values"]), dict(window["distributions"])
    if negative_bands is not None:
        ref, now = negative_bands
        values["negative_js"] = negative_distribution_drift(ref, now)
        dists["negative_bands"] = {"champion": list(map(float, ref)), "now": list(map(float, now))}
    if performance is not None:
        values |= performance_decay(*performance)
    return DriftReport(evaluate_signals(values, thresholds), values, dists)
