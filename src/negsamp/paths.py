"""Where every artifact lives, relative to the project root. dvc.yaml declares the same paths."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """Artifact locations. Pools, models and metrics are per configuration (``variant``),
    one folder per name in ``sweep.configs``; data, splits and candidates are shared."""

    root: Path = Path(".")
    variant: str = "default"

    def for_variant(self, name: str) -> Paths:
        return replace(self, variant=name)

    def _p(self, *parts: str) -> Path:
        return self.root.joinpath("data", *parts)

    # synthesize
    @property
    def raw_synthetic(self) -> Path:
        return self._p("raw", "synthetic.parquet")

    # ingest
    @property
    def interactions(self) -> Path:
        return self._p("interim", "interactions.parquet")

    @property
    def user_ids(self) -> Path:
        return self._p("interim", "user_ids.parquet")

    @property
    def item_ids(self) -> Path:
        return self._p("interim", "item_ids.parquet")

    @property
    def ingest_report(self) -> Path:
        return self._p("interim", "ingest.json")

    @property
    def item_attributes(self) -> Path:
        return self._p("interim", "item_attributes.parquet")

    @property
    def item_release(self) -> Path:
        return self._p("interim", "item_release.parquet")

    # validate
    @property
    def validation_dir(self) -> Path:
        return self._p("validation")

    @property
    def validation_result(self) -> Path:
        return self._p("validation", "result.json")

    # split
    @property
    def train(self) -> Path:
        return self._p("split", "train.parquet")

    @property
    def valid(self) -> Path:
        return self._p("split", "valid.parquet")

    @property
    def test(self) -> Path:
        return self._p("split", "test.parquet")

    @property
    def split_report(self) -> Path:
        return self._p("split", "split.json")

    # negative pools
    @property
    def train_pool(self) -> Path:
        return self._p("pools", self.variant, "train_pool.parquet")

    @property
    def train_pool_manifest(self) -> Path:
        return self._p("pools", self.variant, "train_pool.manifest.json")

    @property
    def eval_candidates(self) -> Path:
        return self._p("pools", "eval_candidates.parquet")

    @property
    def eval_candidates_manifest(self) -> Path:
        return self._p("pools", "eval_candidates.manifest.json")

    # train / evaluate / register
    @property
    def model_dir(self) -> Path:
        return self._p("models", self.variant, "model")

    @property
    def train_history(self) -> Path:
        return self._p("models", self.variant, "history.json")

    @property
    def metrics(self) -> Path:
        return self._p("metrics", self.variant, "metrics.json")

    @property
    def per_user(self) -> Path:
        return self._p("metrics", self.variant, "per_user.parquet")

    # report: the comparison of every configuration (shared)
    @property
    def report_dir(self) -> Path:
        return self._p("report")

    @property
    def comparison(self) -> Path:
        return self._p("report", "comparison.json")

    @property
    def registration(self) -> Path:
        return self._p("registry", "registration.json")

    # the refit of a promoted configuration on every interaction (issue #13)
    @property
    def refit_dir(self) -> Path:
        return self._p("registry", "refit")

    @property
    def refit_model(self) -> Path:
        return self._p("registry", "refit", "model")

    @property
    def refit_manifest(self) -> Path:
        return self._p("registry", "refit", "refit.json")

    # recommend: the registered configuration's batch top-K (what a production job reads)
    @property
    def recommendations_dir(self) -> Path:
        return self._p("recommendations")

    @property
    def recommendations(self) -> Path:
        return self._p("recommendations", "recommendations.parquet")

    @property
    def recommendations_manifest(self) -> Path:
        return self._p("recommendations", "manifest.json")
