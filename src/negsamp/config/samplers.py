"""The ``sampler`` section: the shared pool settings and one block per sampler plug-in.

Resolved configurations (``PopularitySamplerCfg`` ...) are what samplers and the trainer
take; each is built from a ``*Settings`` block plus the shared settings it has.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from negsamp.config.base import Frozen
from negsamp.config.plugins import PluginSection
from negsamp.config.search import Dim, Float, Int

Exclude = Literal["train", "train+valid", "none"]


class _PoolFields(Frozen):
    """Options of every sampler configuration that writes a pool."""

    pool_epochs: int = Field(
        5, ge=1, description="epochs in the pool; epoch e reads e % pool_epochs"
    )
    replace: bool = Field(True, description="False: distinct negatives within a row")
    exclude: Exclude = Field(
        "train", description="whose positives are never negatives; none: positives may appear"
    )
    exclude_unreleased: bool = Field(
        False, description="never a negative first seen after the positive's time"
    )
    first_seen: Literal["log", "release"] = Field(
        "log",
        description="an item's first-seen time: its first interaction in the log, or its "
        "release date (data.item_features; the log where the file gives none)",
    )

    @model_validator(mode="after")
    def _unreleased(self) -> _PoolFields:
        if self.exclude_unreleased and not self.replace:
            raise ValueError(
                "exclude_unreleased draws with replacement: set sampler.replace=true, or "
                "sampler.exclude_unreleased=false"
            )
        return self


class _SamplerFields(_PoolFields):
    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"n_neg": Int(1, 16, log=True)}

    n_neg: int = Field(4, ge=1)


class _DataSide(_SamplerFields):
    @property
    def side(self) -> str:
        """data: the pool holds the negatives; batch: the trainer picks them per batch."""
        return "data"

    @property
    def pool_width(self) -> int:
        """Negatives per positive stored in the pool."""
        return self.n_neg


# --------------------------------------------------------------------------- own settings


class PopularitySettings(Frozen):
    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"alpha": Float(0.0, 1.0)}

    alpha: float = Field(0.75, ge=0.0, le=1.0)
    by: Literal["events", "weight"] = Field(
        "events",
        description="popularity of an item: its training positives (events) or their summed "
        "strength (weight: data.columns.weight, else the aggregated event counts)",
    )


class StratifiedSettings(Frozen):
    by: Literal["popularity", "attribute"] = Field(
        "popularity", description="strata: popularity bands, or the values of an attribute family"
    )
    bands: tuple[float, ...] = Field(
        (0.2, 0.3, 0.5), description="share of negatives per popularity band, head first"
    )
    band_edges: tuple[float, ...] = Field(
        (0.95, 0.8), description="item-count rank quantiles between the bands, head first"
    )
    family: str = Field("genre", description="by attribute: the attribute family")
    attribute_values: tuple[str, ...] = Field(
        (), description="by attribute: the values drawn from; empty = every value of the family"
    )
    attribute_shares: tuple[float, ...] = Field(
        (), description="by attribute: share per attribute_values entry; empty = equal shares"
    )

    @model_validator(mode="after")
    def _bands(self) -> StratifiedSettings:
        v, s = self.attribute_values, self.attribute_shares
        if s and len(s) != len(v):
            raise ValueError(
                f"attribute_shares has {len(s)} entries for {len(v)} attribute_values: give one "
                "share per value (or none, for equal shares)"
            )
        if s and (any(x < 0 for x in s) or abs(sum(s) - 1.0) > 1e-6):
            raise ValueError(f"attribute_shares: each >= 0, summing to 1 (got {list(s)})")
        b, e = self.bands, self.band_edges
        if len(e) != len(b) - 1:
            raise ValueError(f"{len(b)} bands need {len(b) - 1} band_edges, got {len(e)}")
        if any(s < 0 for s in b) or abs(sum(b) - 1.0) > 1e-6:
            raise ValueError(f"bands are shares: each >= 0, summing to 1 (got {list(b)})")
        if any(not 0.0 < x < 1.0 for x in e) or any(x <= y for x, y in zip(e, e[1:], strict=False)):
            raise ValueError(f"band_edges must be strictly decreasing within (0, 1), got {list(e)}")
        return self


class SameAttributeSettings(Frozen):
    family: str = Field(
        "genre", description="the attribute family negatives share with the positive"
    )


class TeacherHardSettings(Frozen):
    teacher: str = Field("champion", description="champion | path to a saved model directory")
    top_k: int = Field(50, ge=1, description="mined non-positives per user to draw from")
    skip_top: int = Field(
        0, ge=0, description="best-scored non-positives skipped (false negatives)"
    )


class InBatchSettings(Frozen):
    logq_correction: bool = Field(True, description="subtract log P(item in batch) (Yi et al.)")


class _BaseDrawnSettings(Frozen):
    base: Literal["uniform", "popularity"] = "uniform"
    alpha: float = Field(0.75, ge=0.0, le=1.0, description="popularity exponent of base")
    candidates: int = Field(32, ge=1, description="base draws scored per positive")


class HardSettings(_BaseDrawnSettings):
    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"k": Int(1, 4)}

    k: int = Field(1, ge=1, description="negatives kept per positive (the hardest)")
    temperature: float | None = Field(
        None, gt=0.0, description="null: top-k; else softmax sampling (the schedule's end value)"
    )
    schedule: Literal["constant", "linear", "step"] = Field(
        "constant",
        description="hardness curriculum over epochs for softmax sampling: constant "
        "temperature; linear from temperature_start to temperature over schedule_epochs; step "
        "from temperature_start to temperature at epoch schedule_epochs",
    )
    temperature_start: float = Field(
        10.0, gt=0.0, description="linear | step: the temperature at epoch 0 (high = softer)"
    )
    schedule_epochs: int = Field(
        10, ge=1, description="linear: epochs of the ramp; step: the epoch it switches at"
    )

    @model_validator(mode="after")
    def _k(self) -> HardSettings:
        if self.k > self.candidates:
            raise ValueError(f"k={self.k} exceeds candidates={self.candidates}")
        if self.schedule != "constant" and self.temperature is None:
            raise ValueError(
                f"schedule={self.schedule} moves the softmax temperature: set temperature (its "
                "end value), or schedule: constant for top-k"
            )
        return self

    def temperature_at(self, epoch: int) -> float | None:
        """The scheduled temperature of epoch ``epoch`` (0-based); None: top-k."""
        start, end, k = self.temperature_start, self.temperature, self.schedule_epochs
        if end is None or self.schedule == "constant":
            return end
        if self.schedule == "linear":
            return start + (end - start) * min(1.0, epoch / k)
        return start if epoch < k else end


class MixedSettings(_BaseDrawnSettings):
    SEARCH_SPACE: ClassVar[dict[str, Dim]] = {"hard_fraction": Float(0.0, 1.0)}

    hard_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="share of n_neg that is hard (the schedule's end value)"
    )
    schedule: Literal["constant", "linear", "step"] = Field(
        "constant",
        description="hardness curriculum over epochs: constant hard_fraction; linear from "
        "hard_fraction_start to hard_fraction over schedule_epochs; step from "
        "hard_fraction_start to hard_fraction at epoch schedule_epochs",
    )
    hard_fraction_start: float = Field(
        0.0, ge=0.0, le=1.0, description="linear | step: hard_fraction at epoch 0"
    )
    schedule_epochs: int = Field(
        10, ge=1, description="linear: epochs of the ramp; step: the epoch it switches at"
    )
    max_item_share: float | None = Field(
        None, gt=0.0, le=1.0, description="cap on one item's share of an epoch's negatives"
    )


# --------------------------------------------------------------------------- resolved


class UniformSamplerCfg(_DataSide):
    name: Literal["uniform"] = "uniform"


class PopularitySamplerCfg(PopularitySettings, _DataSide):
    name: Literal["popularity"] = "popularity"


class StratifiedSamplerCfg(StratifiedSettings, _DataSide):
    name: Literal["stratified"] = "stratified"


class SameAttributeSamplerCfg(SameAttributeSettings, _DataSide):
    name: Literal["same_attribute"] = "same_attribute"


class TeacherHardSamplerCfg(TeacherHardSettings, _DataSide):
    name: Literal["teacher_hard"] = "teacher_hard"

    @model_validator(mode="after")
    def _no_unreleased(self) -> TeacherHardSamplerCfg:
        if self.exclude_unreleased:
            raise ValueError(
                "exclude_unreleased is not supported by teacher_hard; use it with uniform, "
                "popularity, stratified, same_attribute, or the base of hard / mixed"
            )
        return self

    @model_validator(mode="after")
    def _top_k(self) -> TeacherHardSamplerCfg:
        if not self.replace and self.top_k < self.n_neg:
            raise ValueError(f"replace=false needs top_k >= n_neg ({self.top_k} < {self.n_neg})")
        return self


class InBatchSamplerCfg(InBatchSettings):
    name: Literal["in_batch"] = "in_batch"

    @property
    def side(self) -> str:
        return "batch"

    @property
    def pool_width(self) -> int:
        return 0


class _BaseDrawn:
    """The base sampler that fills a batch-side sampler's pool with candidates."""

    def base_cfg(self) -> UniformSamplerCfg | PopularitySamplerCfg:
        """The data-side sampler that fills the pool (``pool_width`` base draws per positive)."""
        common = {
            "n_neg": self.pool_width,  # type: ignore[attr-defined]
            "pool_epochs": self.pool_epochs,  # type: ignore[attr-defined]
            "replace": self.replace,  # type: ignore[attr-defined]
            "exclude": self.exclude,  # type: ignore[attr-defined]
            "exclude_unreleased": self.exclude_unreleased,  # type: ignore[attr-defined]
            "first_seen": self.first_seen,  # type: ignore[attr-defined]
        }
        if self.base == "popularity":  # type: ignore[attr-defined]
            return PopularitySamplerCfg(alpha=self.alpha, **common)  # type: ignore[attr-defined]
        return UniformSamplerCfg(**common)

    @property
    def side(self) -> str:
        return "batch"


class HardSamplerCfg(_BaseDrawn, HardSettings, _PoolFields):
    name: Literal["hard"] = "hard"

    @property
    def n_neg(self) -> int:
        return self.k

    @property
    def pool_width(self) -> int:
        return self.candidates


class MixedSamplerCfg(_BaseDrawn, MixedSettings, _SamplerFields):
    name: Literal["mixed"] = "mixed"

    @model_validator(mode="after")
    def _hard(self) -> MixedSamplerCfg:
        if self.n_hard > self.candidates:
            raise ValueError(f"{self.n_hard} hard negatives exceed candidates={self.candidates}")
        return self

    def hard_fraction_at(self, epoch: int) -> float:
        """The scheduled hard_fraction of epoch ``epoch`` (0-based)."""
        start, end, k = self.hard_fraction_start, self.hard_fraction, self.schedule_epochs
        if self.schedule == "linear":
            return start + (end - start) * min(1.0, epoch / k)
        if self.schedule == "step":
            return start if epoch < k else end
        return end

    def n_hard_at(self, epoch: int) -> int:
        """Hard negatives per positive in epoch ``epoch``."""
        return int(round(self.hard_fraction_at(epoch) * self.n_neg))

    @property
    def n_hard(self) -> int:
        """The most hard negatives per positive any epoch uses."""
        if self.schedule == "constant":
            return int(round(self.hard_fraction * self.n_neg))
        return int(round(max(self.hard_fraction, self.hard_fraction_start) * self.n_neg))

    @property
    def n_random(self) -> int:
        """The most random negatives per positive any epoch uses (the pool's random columns)."""
        low = self.hard_fraction
        if self.schedule != "constant":
            low = min(self.hard_fraction, self.hard_fraction_start)
        return self.n_neg - int(round(low * self.n_neg))

    @property
    def pool_width(self) -> int:
        """Pool columns: ``candidates`` for the hard pick, then ``n_random`` random ones."""
        return self.candidates + self.n_random


SamplerCfg = Annotated[
    UniformSamplerCfg
    | PopularitySamplerCfg
    | StratifiedSamplerCfg
    | SameAttributeSamplerCfg
    | TeacherHardSamplerCfg
    | InBatchSamplerCfg
    | HardSamplerCfg
    | MixedSamplerCfg,
    Field(discriminator="name"),
]

_RESOLVED = {
    c.model_fields["name"].default: c
    for c in (
        UniformSamplerCfg,
        PopularitySamplerCfg,
        StratifiedSamplerCfg,
        SameAttributeSamplerCfg,
        TeacherHardSamplerCfg,
        InBatchSamplerCfg,
        HardSamplerCfg,
        MixedSamplerCfg,
    )
}

SamplerName = Literal[
    "uniform",
    "popularity",
    "stratified",
    "same_attribute",
    "teacher_hard",
    "in_batch",
    "hard",
    "mixed",
]


class SamplerSection(PluginSection, _SamplerFields):
    """``sampler:`` in params.yaml; :attr:`active` is the running sampler's configuration."""

    SECTION = "sampler"
    SHARED = ("n_neg", "pool_epochs", "replace", "exclude", "exclude_unreleased", "first_seen")
    RESOLVED = _RESOLVED

    name: SamplerName = "uniform"
    popularity: PopularitySettings = PopularitySettings()
    stratified: StratifiedSettings = StratifiedSettings()
    same_attribute: SameAttributeSettings = SameAttributeSettings()
    teacher_hard: TeacherHardSettings = TeacherHardSettings()
    in_batch: InBatchSettings = InBatchSettings()
    hard: HardSettings = HardSettings()
    mixed: MixedSettings = MixedSettings()
