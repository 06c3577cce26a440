"""Where the evaluate stage's outputs live: data/metrics/<configuration>/ (dvc.yaml agrees).

metrics.json (every metric, flat name -> number) and per_user.parquet are the ones
:class:`negsamp.paths.Paths` names; the rest sit beside them. headline.json holds the few
metrics people compare (:data:`HEADLINE` at ``evaluate.plot_k``): it is the file dvc.yaml
declares as the stage's ``metrics``, so `dvc metrics show` and `dvc exp show` print a
handful of columns per configuration instead of hundreds (issue #15).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from negsamp.paths import Paths

PLOTS = ("at_k", "by_item_popularity", "by_user_activity", "estimators")
HEADLINE = ("sampled_hr", "sampled_ndcg", "full_recall", "full_ndcg", "coverage", "arp")


def headline(metrics: dict[str, float], k: int) -> dict[str, float]:
    """The :data:`HEADLINE` metrics at ``k`` that ``metrics`` holds, in that order."""
    return {f"{m}_{k}": metrics[f"{m}_{k}"] for m in HEADLINE if f"{m}_{k}" in metrics}


@dataclass(frozen=True)
class EvalFiles:
    paths: Paths

    @property
    def metrics(self) -> Path:
        return self.paths.metrics

    @property
    def per_user(self) -> Path:
        return self.paths.per_user

    @property
    def folder(self) -> Path:
        return self.paths.metrics.parent

    @property
    def headline(self) -> Path:
        """The few metrics `dvc metrics show` prints (see the module doc)."""
        return self.folder / "headline.json"

    @property
    def ci(self) -> Path:
        """{metric: {ci_low, ci_high}}: bootstrap CI over users of every per-user metric."""
        return self.folder / "ci.json"

    @property
    def corrected(self) -> Path:
        """{full_ metric: {exact, sampled, rescaled, bv, <estimate>_error}}."""
        return self.folder / "corrected.json"

    @property
    def segments(self) -> Path:
        """segment, band, metric, value, ci_low, ci_high, n_users."""
        return self.folder / "segments.csv"

    @property
    def calibration(self) -> Path:
        """ECE and reliability diagrams, raw and sampling-corrected (pointwise models)."""
        return self.folder / "calibration.json"

    @property
    def reliability(self) -> Path:
        """The reliability diagram (a PNG; a note that there is none for other models)."""
        return self.folder / "reliability.png"

    @property
    def probe(self) -> Path:
        """Linear probes of the item embeddings per attribute family, and their baselines."""
        return self.folder / "probe.json"

    def plot(self, name: str) -> Path:
        if name not in PLOTS:
            raise ValueError(f"unknown plot {name!r}; plots: {PLOTS}")
        return self.folder / "plots" / f"{name}.csv"

    def reports(self) -> list[Path]:
        """Every output besides metrics.json and per_user.parquet, for MLflow."""
        return [
            self.headline, self.ci, self.corrected, self.segments, self.calibration,
            self.reliability, self.probe,
            *(self.plot(p) for p in PLOTS)
        ]  # fmt: skip
