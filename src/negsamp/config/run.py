"""Sections of the run side: the trainer, evaluation, the registry gate, drift, the sweep, schedules."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from negsamp.config.base import Frozen

_MONITOR_RE = r"^(sampled_(hr|ndcg)|full_(recall|ndcg))_[1-9][0-9]*$"


class DistributedCfg(Frozen):
    workers: int = Field(
        1,
        ge=1,
        description="data-parallel training workers (Ray Train, DDP) when base.engine is ray; "
        "1 = in process",
    )
    use_gpu: bool = Field(False, description="one GPU per worker (NCCL); false: CPU workers (gloo)")


class TrainCfg(Frozen):
    epochs: int = Field(50, ge=1, description="most epochs (early stopping may end sooner)")
    batch_size: int = Field(4096, ge=1)
    lr: float | None = Field(None, gt=0.0, description="null: the model's tuned lr")
    l2: float | None = Field(None, ge=0.0, description="null: the model's tuned l2")
    optimizer: Literal["adam", "sgd"] = "adam"
    patience: int = Field(10, ge=0, description="epochs without improvement before stopping")
    monitor: str = Field("sampled_ndcg_10", pattern=_MONITOR_RE)
    restore_best: bool = True
    checkpoint: bool = True
    resume: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    logq_correction: bool = True
    positive_weight: Literal["none", "linear", "log"] = Field(
        "none",
        description="gradient models: each positive's loss weighs f (linear) or 1 + log1p(f) "
        "(log), normalised to mean 1; f = the interaction weight, else the event count",
    )
    distributed: DistributedCfg = DistributedCfg()


class EvaluateCfg(Frozen):
    ks: tuple[int, ...] = (1, 5, 10, 20, 50, 100)
    n_eval_neg: int = Field(99, ge=1)
    batch_size: int = Field(1024, ge=1, description="users (full) or rows (sampled) per batch")
    plot_k: int = Field(10, ge=1, description="the K the by-band and estimator plots show")
    bootstrap: int = Field(1000, ge=10, description="bootstrap resamples of users for CIs")
    ci_level: float = Field(0.95, gt=0.0, lt=1.0)
    correction_gamma: float = Field(
        0.1, ge=0.0, le=1.0, description="variance weight of the BV estimator (0 = CLS)"
    )
    user_bands: tuple[int, int] = Field(
        (10, 50), description="training positives: cold < a <= medium < b <= heavy"
    )
    item_bands: tuple[float, float] = Field(
        (0.2, 0.8), description="cumulative interaction shares ending the head and the torso"
    )
    calibration_bins: int = Field(10, ge=2, description="bins of the ECE (pointwise models)")
    probe_min_count: int = Field(
        5, ge=1, description="training positives an item needs to be probed"
    )
    probe_test_share: float = Field(
        0.3, gt=0.0, lt=1.0, description="share of probed items held out"
    )

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(k < 1 for k in v):
            raise ValueError("ks must be a non-empty list of positive integers")
        return tuple(sorted(set(v)))

    @field_validator("user_bands")
    @classmethod
    def _user_bands(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError(f"user_bands must be [a, b] with 1 <= a <= b, got {list(v)}")
        return v

    @field_validator("item_bands")
    @classmethod
    def _item_bands(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < v[0] <= v[1] < 1.0:
            raise ValueError(f"item_bands must be [a, b] with 0 < a <= b < 1, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _plot_k_in_ks(self) -> EvaluateCfg:
        if self.plot_k not in self.ks:
            raise ValueError(f"plot_k={self.plot_k} must be one of ks {list(self.ks)}")
        return self


class RegistryCfg(Frozen):
    model_name: str = "negsamp"
    experiment: str = "negsamp"
    metric: str = "sampled_ndcg_10"
    greater_is_better: bool = True
    margin: float = Field(
        0.0, ge=0.0, description="improvement the challenger needs over the champion"
    )
    require_significance: bool = Field(
        False, description="also require the paired test's p-value below `significance`"
    )
    significance: float = Field(0.05, gt=0.0, lt=1.0)
    n_resamples: int = Field(2000, ge=100, description="paired bootstrap / permutation draws")
    refit: bool = Field(
        True,
        description="serve the winner refit on every interaction for its kept epochs (#13)",
    )


_Threshold = Annotated[float | None, Field(ge=0.0)]


class DriftCfg(Frozen):
    """Drift-check thresholds: a signal fires when its value exceeds (>) its threshold; null = off.

    Definitions are in :mod:`negsamp.drift`. PSI: 0.1 moderate, 0.25 significant shift
    (the usual credit-scoring rule of thumb); JS divergences are in bits, within [0, 1].
    """

    item_popularity_psi: _Threshold = Field(0.2, description="PSI over reference-popularity bins")
    item_js: _Threshold = Field(0.1, description="JS (bits) of the full item distribution")
    cold_item_share: _Threshold = Field(0.05, description="new-window share on items unseen in ref")
    new_user_share: _Threshold = Field(0.2, description="share of new-window users absent from ref")
    user_activity_psi: _Threshold = Field(0.2, description="PSI of events per user, log2 bins")
    negative_js: _Threshold = Field(0.05, description="JS (bits) of negatives' popularity deciles")
    performance_drop: _Threshold = Field(0.1, description="largest relative drop of a metric")
    popularity_bins: int = Field(10, ge=2, description="equal-reference-mass item popularity bins")
    activity_bins: int = Field(10, ge=2, description="log2 bins of events per user: 1, 2-3, ...")


_NAME_RE = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class VariantCfg(Frozen):
    """One named configuration to compare: partial overrides of the shared sections."""

    sampler: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


class RayCfg(Frozen):
    """Where ``base.engine: ray`` runs: a local instance or an existing cluster."""

    address: str | None = Field(
        None,
        description="null: start a local Ray instance on 127.0.0.1 sized to this machine; "
        "auto: the cluster this machine belongs to; ray://host:10001: a remote cluster",
    )
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of a local instance; null: the cores this process may use"
    )
    object_store_mb: int | None = Field(
        None, ge=75, description="object store of a local instance in MiB; null: Ray's default"
    )
    shards: int | None = Field(
        None, ge=1, description="user ranges of sharded work; null: 2 per CPU of the cluster"
    )
    cpus_per_task: float = Field(1.0, gt=0, description="CPUs each sharded task reserves")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None or v == "auto" or v.startswith("ray://") or re.match(r"^[\w.-]+:\d+$", v):
            return v
        raise ValueError(f"ray.address must be null, auto, ray://host:port or host:port, got {v!r}")


class SweepCfg(Frozen):
    configs: dict[str, VariantCfg] = Field(
        default_factory=lambda: {"default": VariantCfg()},
        description="named configurations; each gets its own pool, model and metrics",
    )
    concurrency: int = Field(2, ge=1, description="configurations trained at once by the flow")

    @field_validator("configs")
    @classmethod
    def _names(cls, v: dict[str, VariantCfg]) -> dict[str, VariantCfg]:
        if not v:
            raise ValueError("sweep.configs needs at least one configuration (e.g. default: {})")
        bad = [k for k in v if not re.match(_NAME_RE, k)]
        if bad:
            raise ValueError(f"configuration names must be letters, digits, _ . - : {bad}")
        return v


class ScheduleCfg(Frozen):
    cron: str = Field("0 3 * * *", description="when the drift-check deployment runs")
    timezone: str = Field("UTC", description="IANA timezone the cron is read in")
    work_pool: str = Field("negsamp", description="work pool of the prefect.yaml deployments")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {v!r}: use an IANA name such as UTC or Europe/Paris"
            ) from None
        return v


class RecommendCfg(Frozen):
    """The recommend stage: batch top-K of the registered configuration for every known user."""

    k: int = Field(10, ge=1, description="items per user")
    batch_size: int = Field(4096, ge=1, description="users scored at once (batch x items)")
