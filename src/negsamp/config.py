"""The typed, frozen configuration tree that mirrors params.yaml.

params.yaml is the single source of truth. It is parsed once at the entry point
(CLI or flow) into :class:`Config`, and typed sub-configs are passed down. Unknown
keys are rejected (``extra="forbid"``) so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

log = logging.getLogger(__name__)

PARAMS_FILE = "params.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseCfg(_Frozen):
    seed: int = Field(42, ge=0, description="root seed; every generator derives from it")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {v!r}")


class SyntheticCfg(_Frozen):
    n_users: int = Field(5000, ge=2)
    n_items: int = Field(2000, ge=2)
    n_interactions: int = Field(200_000, ge=10)
    n_tastes: int = Field(8, ge=1, description="latent taste clusters")
    tastes_per_user: int = Field(2, ge=1)
    taste_strength: float = Field(0.8, ge=0.0, le=1.0)
    zipf_exponent: float = Field(1.0, ge=0.0)
    activity_sigma: float = Field(1.2, ge=0.0, description="lognormal sigma of user activity")
    days: int = Field(365, ge=1)
    start: str = Field("2025-01-01")
    drift: float = Field(0.0, ge=0.0, le=1.0, description="0 = stationary; 1 = strong drift")
    new_item_share: float = Field(0.1, ge=0.0, lt=1.0)


class ColumnsCfg(_Frozen):
    user: str = "user"
    item: str = "item"
    rating: str | None = "rating"
    timestamp: str | None = "timestamp"


DataSource = Literal[
    "synthetic", "movielens-100k", "movielens-1m", "movielens-csv", "csv", "tsv", "parquet"
]


class AppendCfg(_Frozen):
    """A batch added by ``negsamp ingest --append``: a raw-schema Parquet file and its md5."""

    path: str
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")


class DataCfg(_Frozen):
    source: DataSource = "synthetic"
    path: str = "data/raw/synthetic.parquet"
    columns: ColumnsCfg = ColumnsCfg()
    rating_threshold: float | None = None
    appends: tuple[AppendCfg, ...] = ()
    synthetic: SyntheticCfg = SyntheticCfg()


class ValidateCfg(_Frozen):
    min_interactions_per_user: int = Field(3, ge=1)
    min_timestamp: str = "1970-01-02"
    max_timestamp: str = "2100-01-01"
    failure_examples: int = Field(5, ge=1, le=100)
    min_eligible_user_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of users that must have >= split.min_interactions rows",
    )


class SplitCfg(_Frozen):
    method: Literal["leave_one_out", "temporal"] = "leave_one_out"
    validation: bool = True
    temporal_cutoff: float = Field(0.8, gt=0.0, lt=1.0)
    min_interactions: int = Field(3, ge=2)


class _PoolCommon(_Frozen):
    """Options of every sampler configuration that writes a pool."""

    pool_epochs: int = Field(
        5, ge=1, description="epochs in the pool; epoch e reads e % pool_epochs"
    )
    replace: bool = Field(True, description="False: distinct negatives within a row")
    exclude: Literal["train", "train+valid", "none"] = Field(
        "train", description="whose positives are never negatives; none: positives may appear"
    )


class _SamplerCommon(_PoolCommon):
    n_neg: int = Field(4, ge=1)

    @property
    def side(self) -> str:
        """data: the pool holds the negatives; batch: the trainer picks them per batch."""
        return "data"

    @property
    def pool_width(self) -> int:
        """Negatives per positive stored in the pool."""
        return self.n_neg


class UniformSamplerCfg(_SamplerCommon):
    name: Literal["uniform"] = "uniform"


class PopularitySamplerCfg(_SamplerCommon):
    name: Literal["popularity"] = "popularity"
    alpha: float = Field(0.75, ge=0.0, le=1.0)


class StratifiedSamplerCfg(_SamplerCommon):
    name: Literal["stratified"] = "stratified"
    bands: tuple[float, ...] = Field(
        (0.2, 0.3, 0.5), description="share of negatives per popularity band, head first"
    )
    band_edges: tuple[float, ...] = Field(
        (0.95, 0.8), description="item-count rank quantiles between the bands, head first"
    )

    @model_validator(mode="after")
    def _bands(self) -> StratifiedSamplerCfg:
        b, e = self.bands, self.band_edges
        if len(e) != len(b) - 1:
            raise ValueError(f"{len(b)} bands need {len(b) - 1} band_edges, got {len(e)}")
        if any(s < 0 for s in b) or abs(sum(b) - 1.0) > 1e-6:
            raise ValueError(f"bands are shares: each >= 0, summing to 1 (got {list(b)})")
        if any(not 0.0 < x < 1.0 for x in e) or any(x <= y for x, y in zip(e, e[1:], strict=False)):
            raise ValueError(f"band_edges must be strictly decreasing within (0, 1), got {list(e)}")
        return self


class TeacherHardSamplerCfg(_SamplerCommon):
    name: Literal["teacher_hard"] = "teacher_hard"
    teacher: str = Field("champion", description="champion | path to a saved model directory")
    top_k: int = Field(50, ge=1, description="mined non-positives per user to draw from")
    skip_top: int = Field(
        0, ge=0, description="best-scored non-positives skipped (false negatives)"
    )

    @model_validator(mode="after")
    def _top_k(self) -> TeacherHardSamplerCfg:
        if not self.replace and self.top_k < self.n_neg:
            raise ValueError(f"replace=false needs top_k >= n_neg ({self.top_k} < {self.n_neg})")
        return self


class InBatchSamplerCfg(_Frozen):
    name: Literal["in_batch"] = "in_batch"
    logq_correction: bool = Field(True, description="subtract log P(item in batch) (Yi et al.)")

    @property
    def side(self) -> str:
        return "batch"

    @property
    def pool_width(self) -> int:
        return 0


class _BaseDrawn(_Frozen):
    base: Literal["uniform", "popularity"] = "uniform"
    alpha: float = Field(0.75, ge=0.0, le=1.0, description="popularity exponent of base")
    candidates: int = Field(32, ge=1, description="base draws scored per positive")

    @property
    def side(self) -> str:
        return "batch"

    def base_cfg(self) -> UniformSamplerCfg | PopularitySamplerCfg:
        """The data-side sampler that fills the pool (``pool_width`` base draws per positive)."""
        common = {
            "n_neg": self.pool_width,  # type: ignore[attr-defined]
            "pool_epochs": self.pool_epochs,  # type: ignore[attr-defined]
            "replace": self.replace,  # type: ignore[attr-defined]
            "exclude": self.exclude,  # type: ignore[attr-defined]
        }
        if self.base == "popularity":
            return PopularitySamplerCfg(alpha=self.alpha, **common)
        return UniformSamplerCfg(**common)


class HardSamplerCfg(_BaseDrawn, _PoolCommon):
    name: Literal["hard"] = "hard"
    k: int = Field(1, ge=1, description="negatives kept per positive (the hardest)")
    temperature: float | None = Field(
        None, gt=0.0, description="null: top-k; else softmax sampling"
    )

    @model_validator(mode="after")
    def _k(self) -> HardSamplerCfg:
        if self.k > self.candidates:
            raise ValueError(f"k={self.k} exceeds candidates={self.candidates}")
        return self

    @property
    def n_neg(self) -> int:
        return self.k

    @property
    def pool_width(self) -> int:
        return self.candidates


class MixedSamplerCfg(_BaseDrawn, _SamplerCommon):
    name: Literal["mixed"] = "mixed"
    hard_fraction: float = Field(0.5, ge=0.0, le=1.0, description="share of n_neg that is hard")
    max_item_share: float | None = Field(
        None, gt=0.0, le=1.0, description="cap on one item's share of an epoch's negatives"
    )

    @model_validator(mode="after")
    def _hard(self) -> MixedSamplerCfg:
        if self.n_hard > self.candidates:
            raise ValueError(f"{self.n_hard} hard negatives exceed candidates={self.candidates}")
        return self

    @property
    def n_hard(self) -> int:
        return int(round(self.hard_fraction * self.n_neg))

    @property
    def n_random(self) -> int:
        return self.n_neg - self.n_hard

    @property
    def pool_width(self) -> int:
        """Pool columns: ``candidates`` for the hard pick, then ``n_random`` random ones."""
        return self.candidates + self.n_random


SamplerCfg = Annotated[
    UniformSamplerCfg
    | PopularitySamplerCfg
    | StratifiedSamplerCfg
    | TeacherHardSamplerCfg
    | InBatchSamplerCfg
    | HardSamplerCfg
    | MixedSamplerCfg,
    Field(discriminator="name"),
]


Loss = Literal["bpr", "bce", "sampled_softmax", "full_softmax"]


class _GradientModel(_Frozen):
    """What every model trained by the shared gradient trainer has (defaults tuned per model)."""

    loss: Loss = Field("bce", description="bpr | bce | sampled_softmax | full_softmax")
    lr: float = Field(0.005, gt=0.0, description="tuned learning rate (train.lr overrides)")
    l2: float = Field(3e-4, ge=0.0, description="tuned L2 penalty (train.l2 overrides)")
    init_std: float = Field(0.01, gt=0.0, description="std of the normal initialisation")
    recency_boost: float = Field(
        10.0,
        ge=0.0,
        description="a positive's weight is 1 + boost * exp(-k / window) for the "
        "user's k-th most recent one (0: every positive weighs 1)",
    )
    recency_window: float = Field(10.0, gt=0.0, description="decay, in a user's interactions")


class BPRCfg(_GradientModel):
    """Matrix factorisation with the pairwise BPR loss (Rendle et al. 2009)."""

    name: Literal["bpr"] = "bpr"
    factors: int = Field(64, ge=1)
    item_bias: bool = True
    loss: Loss = "bpr"
    l2: float = Field(3e-3, ge=0.0)


class LMFCfg(_GradientModel):
    """Logistic matrix factorisation: sigmoid(<p_u, q_i> + b_u + b_i), pointwise BCE."""

    name: Literal["lmf"] = "lmf"
    factors: int = Field(64, ge=1)
    l2: float = Field(3e-3, ge=0.0)


class GMFCfg(_GradientModel):
    """NCF's generalized matrix factorisation: h . (p_u * q_i) (He et al. 2017)."""

    name: Literal["gmf"] = "gmf"
    factors: int = Field(64, ge=1)


class MLPCfg(_GradientModel):
    """NCF's MLP tower over [p_u, q_i]; ``layers`` are the hidden sizes (the first is 2*factors
    in the paper's tower shape)."""

    name: Literal["mlp"] = "mlp"
    factors: int = Field(32, ge=1, description="embedding size of each side")
    layers: tuple[int, ...] = Field((64, 32, 16), min_length=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    l2: float = Field(1e-4, ge=0.0)


class NeuMFCfg(_GradientModel):
    """GMF and MLP side by side, joined by one output layer; optionally initialised from
    pretrained GMF and MLP model folders (both or neither), blended with ``alpha``."""

    name: Literal["neumf"] = "neumf"
    factors: int = Field(32, ge=1, description="GMF embedding size")
    mlp_factors: int = Field(32, ge=1, description="MLP embedding size of each side")
    layers: tuple[int, ...] = Field((64, 32, 16), min_length=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pretrained_gmf: str | None = Field(None, description="a saved gmf model folder")
    pretrained_mlp: str | None = Field(None, description="a saved mlp model folder")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of GMF's output layer")

    @model_validator(mode="after")
    def _both_or_neither(self) -> NeuMFCfg:
        if (self.pretrained_gmf is None) != (self.pretrained_mlp is None):
            raise ValueError("set both pretrained_gmf and pretrained_mlp, or neither")
        return self


class IALSCfg(_Frozen):
    """Implicit ALS / WMF (Hu, Koren, Volinsky 2008): confidence c = 1 + alpha * count * r on
    the observed cells (r = 1 + recency_boost * exp(-k / recency_window) for the user's k-th
    most recent positive; r = 1 with boost 0), weight 1 on every other cell, closed-form
    half-steps. No sampler."""

    name: Literal["ials"] = "ials"
    factors: int = Field(64, ge=1)
    alpha: float = Field(3.0, ge=0.0, description="confidence slope: c = 1 + alpha * count")
    reg: float = Field(50.0, ge=0.0, description="L2 regularisation lambda of each half-step")
    iterations: int = Field(15, ge=1, description="full iterations (user then item half-step)")
    solver: Literal["cg", "cholesky"] = "cg"
    cg_steps: int = Field(3, ge=1, description="conjugate gradient steps per half-step (cg)")
    init_std: float = Field(0.01, gt=0.0, description="factors start uniform in [0, init_std)")
    recency_boost: float = Field(10.0, ge=0.0, description="extra confidence of recent positives")
    recency_window: float = Field(5.0, gt=0.0, description="decay, in a user's interactions")


ModelCfg = Annotated[
    BPRCfg | LMFCfg | GMFCfg | MLPCfg | NeuMFCfg | IALSCfg, Field(discriminator="name")
]

_MONITOR_RE = r"^(sampled_(hr|ndcg)|full_(recall|ndcg))_[1-9][0-9]*$"


class TrainCfg(_Frozen):
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


class EvaluateCfg(_Frozen):
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


class RegistryCfg(_Frozen):
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


_Threshold = Annotated[float | None, Field(ge=0.0)]


class DriftCfg(_Frozen):
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


class VariantCfg(_Frozen):
    """One named configuration to compare: partial overrides of the shared sections."""

    sampler: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


class SweepCfg(_Frozen):
    configs: dict[str, VariantCfg] = Field(
        default_factory=lambda: {"default": VariantCfg()},
        description="named configurations; each gets its own pool, model and metrics",
    )
    concurrency: int = Field(2, ge=1, description="configurations trained at once by the flow")

    @field_validator("configs")
    @classmethod
    def _names(cls, v: dict[str, VariantCfg]) -> dict[str, VariantCfg]:
        import re

        if not v:
            raise ValueError("sweep.configs needs at least one configuration (e.g. default: {})")
        bad = [k for k in v if not re.match(_NAME_RE, k)]
        if bad:
            raise ValueError(f"configuration names must be letters, digits, _ . - : {bad}")
        return v


class ScheduleCfg(_Frozen):
    cron: str = Field("0 3 * * *", description="when the drift-check deployment runs")
    timezone: str = "UTC"
    work_pool: str = Field("negsamp", description="work pool of the prefect.yaml deployments")


class Config(_Frozen):
    base: BaseCfg = BaseCfg()
    data: DataCfg = DataCfg()
    validate_: ValidateCfg = Field(ValidateCfg(), alias="validate")
    split: SplitCfg = SplitCfg()
    sampler: SamplerCfg = UniformSamplerCfg()
    model: ModelCfg = BPRCfg()
    train: TrainCfg = TrainCfg()
    evaluate: EvaluateCfg = EvaluateCfg()
    registry: RegistryCfg = RegistryCfg()
    sweep: SweepCfg = SweepCfg()
    drift: DriftCfg = DriftCfg()
    schedule: ScheduleCfg = ScheduleCfg()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def variants(self) -> list[str]:
        return list(self.sweep.configs)

    def variant(self, name: str) -> Config:
        """This config with configuration ``name``'s overrides merged into its sections."""
        if name not in self.sweep.configs:
            raise ConfigError(f"unknown configuration {name!r}; sweep.configs has {self.variants}")
        ov = self.sweep.configs[name]
        raw = self.model_dump(mode="json", by_alias=True)
        for section in ("sampler", "model", "train"):
            patch = getattr(ov, section)
            if not patch:
                continue
            base = raw[section]
            if "name" in patch and patch["name"] != base.get("name"):
                base = _switch_plugin(section, base, patch["name"])
            raw[section] = _deep_merge(base, patch)
        # the resolved config is a sweep of one: itself, with nothing left to override
        raw["sweep"] = {"configs": {name: {}}, "concurrency": self.sweep.concurrency}
        return from_dict(raw, f"params.yaml (sweep.configs.{name})")

    @model_validator(mode="after")
    def _variants_valid(self) -> Config:
        for name, ov in self.sweep.configs.items():
            if ov.sampler or ov.model or ov.train:
                self.variant(name)
        return self

    @model_validator(mode="after")
    def _metric_known(self) -> Config:
        from negsamp.metrics_names import headline_names

        known = headline_names(self.evaluate.ks)
        if self.registry.metric not in known:
            raise ValueError(
                f"registry.metric={self.registry.metric!r} is not computed; "
                f"choose one of {sorted(known)} (evaluate.ks decides which K exist)"
            )
        return self


class ConfigError(ValueError):
    """params.yaml (after overrides) is not a valid configuration."""


def _plugin_defaults(section: str, name: str) -> dict[str, Any] | None:
    """The defaults of plug-in ``name`` of ``section`` as JSON; None for an unknown name."""
    from typing import get_args

    union = {"sampler": SamplerCfg, "model": ModelCfg}.get(section)
    if union is None:
        return None
    members = get_args(get_args(union)[0]) or (get_args(union)[0],)
    for cls in members:
        if cls.model_fields["name"].default == name:
            return cls().model_dump(mode="json")
    return None


def _switch_plugin(section: str, base: dict[str, Any], name: str) -> dict[str, Any]:
    """``base`` (one plug-in's settings) carried over to plug-in ``name``.

    The new plug-in starts from its own (tuned) defaults and keeps only the settings that
    were changed from the old plug-in's defaults and that it also has: switching bpr to
    lmf keeps ``factors: 128`` set in params.yaml but not bpr's default ``loss: bpr``.
    Unknown names keep only ``name``, so validation reports them with the known ones.
    """
    old, new = _plugin_defaults(section, base.get("name", "")), _plugin_defaults(section, name)
    if new is None:
        return {"name": name}
    changed = {k: v for k, v in base.items() if old is None or old.get(k, v) != v or k not in old}
    return {k: v for k, v in changed.items() if k in new and k != "name"}


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).endswith("Cfg"))
        loc = loc.replace("validate_", "validate")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (typo? see params.yaml for the keys this section takes)"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    return "\n".join(lines)


def from_dict(raw: dict[str, Any], source: str = PARAMS_FILE) -> Config:
    try:
        return Config.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load(path: str | Path = PARAMS_FILE, overrides: list[str] | None = None) -> Config:
    """Parse params.yaml, apply ``key=value`` overrides in memory, validate."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found: run from the project root or pass --params")
    raw = yaml.safe_load(path.read_text()) or {}
    for ov in overrides or []:
        key, value = parse_override(ov)
        _set_in(raw, key, value)
    return from_dict(raw, str(path))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``sampler.alpha=0.5`` -> (["sampler", "alpha"], 0.5); values parse as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, _, value = text.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    return parts, yaml.safe_load(value) if value != "" else ""


def _set_in(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {'.'.join(parts)}: {p} is not a section")
        node = nxt
    node[parts[-1]] = value


def write_overrides(path: str | Path, overrides: list[str]) -> list[str]:
    """Persist overrides into params.yaml, keeping its comments (as ``dvc exp run -S`` does).

    Validates the merged result first, so a bad override never reaches the file.
    Returns the overrides that changed the file.
    """
    from ruamel.yaml import YAML

    path = Path(path)
    load(path, overrides)  # raises ConfigError before anything is written
    ry = YAML()
    ry.preserve_quotes = True
    doc = ry.load(path.read_text())
    changed = []
    for ov in overrides:
        parts, value = parse_override(ov)
        node = doc
        for p in parts[:-1]:
            if p not in node or node[p] is None:
                node[p] = {}
            node = node[p]
        if node.get(parts[-1]) != value:
            node[parts[-1]] = value
            changed.append(ov)
    if changed:
        import io as _io

        from negsamp.io import atomic_write

        buf = _io.StringIO()
        ry.dump(doc, buf)
        atomic_write(path, buf.getvalue().encode())
    return changed


def dump(cfg: Config) -> dict[str, Any]:
    """The config as plain data, with the public key names (``validate``, not ``validate_``)."""
    return cfg.model_dump(mode="json", by_alias=True)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for MLflow params)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
