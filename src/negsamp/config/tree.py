"""The whole configuration: one frozen tree in params.yaml's own layout.

:class:`Config` mirrors params.yaml key for key (``validate`` is spelt ``validate_`` in
Python), so its JSON form round-trips and the keys DVC tracks are the attributes stages
read. ``cfg.sampler.active`` / ``cfg.model.active`` are the running plug-ins' resolved
configurations; :meth:`Config.variant` is the tree of one ``sweep.configs`` entry.
"""

from __future__ import annotations

import copy

from pydantic import ConfigDict, Field, model_validator

from negsamp.config import overrides
from negsamp.config.base import ConfigError, Frozen
from negsamp.config.data import BaseCfg, DataCfg, SplitCfg, ValidateCfg
from negsamp.config.models import CLOSED_FORM, SEQUENTIAL, SEQUENTIAL_SAMPLERS, ModelSection
from negsamp.config.run import (
    DriftCfg,
    EvaluateCfg,
    RayCfg,
    RecommendCfg,
    RegistryCfg,
    ScheduleCfg,
    SweepCfg,
    TrainCfg,
)
from negsamp.config.samplers import SamplerSection


class Config(Frozen):
    base: BaseCfg = BaseCfg()
    data: DataCfg = DataCfg()
    validate_: ValidateCfg = Field(ValidateCfg(), alias="validate")
    split: SplitCfg = SplitCfg()
    sampler: SamplerSection = SamplerSection()
    model: ModelSection = ModelSection()
    train: TrainCfg = TrainCfg()
    evaluate: EvaluateCfg = EvaluateCfg()
    registry: RegistryCfg = RegistryCfg()
    recommend: RecommendCfg = RecommendCfg()
    sweep: SweepCfg = SweepCfg()
    drift: DriftCfg = DriftCfg()
    schedule: ScheduleCfg = ScheduleCfg()
    ray: RayCfg = RayCfg()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def variants(self) -> list[str]:
        return list(self.sweep.configs)

    def variant(self, name: str) -> Config:
        """This config with ``sweep.configs.<name>`` applied: the same overrides, the same way,
        as ``--set`` would apply them; the result is a sweep of one (itself)."""
        from negsamp.config.load import from_dict

        if name not in self.sweep.configs:
            raise ConfigError(f"unknown configuration {name!r}; sweep.configs has {self.variants}")
        patch = self.sweep.configs[name].model_dump(mode="json", exclude_defaults=True)
        doc = self.model_dump(mode="json", by_alias=True)
        overrides.apply(doc, overrides.from_patch(patch))
        doc["sweep"] = {"configs": {name: {}}, "concurrency": self.sweep.concurrency}
        return from_dict(copy.deepcopy(doc), f"params.yaml (sweep.configs.{name})")

    @model_validator(mode="after")
    def _variants_valid(self) -> Config:
        for name, ov in self.sweep.configs.items():
            if ov.sampler or ov.model or ov.train:
                self.variant(name)
        return self

    @model_validator(mode="after")
    def _plugins_fit(self) -> Config:
        model, sampler = self.model.name, self.sampler.active
        if model in CLOSED_FORM and sampler.side == "batch":
            raise ValueError(
                f"model {model} is fitted in closed form on the positives and takes no "
                f"negatives, so the batch-side sampler {sampler.name!r} cannot serve it: set "
                f"sampler.name to a data-side sampler (uniform) or model.name to a gradient model"
            )
        if model in SEQUENTIAL and sampler.name not in SEQUENTIAL_SAMPLERS:
            raise ValueError(
                f"model {model} draws its negatives per position while it trains, which the "
                f"sampler {sampler.name!r} cannot do: set sampler.name to one of "
                f"{', '.join(SEQUENTIAL_SAMPLERS)}"
            )
        return self

    @model_validator(mode="after")
    def _engine_fits(self) -> Config:
        if self.train.distributed.workers > 1 and self.base.engine != "ray":
            raise ValueError(
                f"train.distributed.workers={self.train.distributed.workers} trains on a Ray "
                "cluster: set base.engine=ray (and install the extra: pip install -e "
                '".[cluster]"), or set train.distributed.workers=1'
            )
        if self.train.distributed.workers > 1:
            self._data_parallel_fits()
        return self

    def _data_parallel_fits(self) -> None:
        """Data-parallel training splits each batch of a negative pool over the workers and
        averages their gradients: what a step needs must lie in the worker's own rows."""
        workers, model = self.train.distributed.workers, self.model.name
        sampler = self.sampler.active
        why = None
        if model in CLOSED_FORM:
            why = f"model {model} is fitted in closed form, not by gradient steps on a pool"
        elif model in SEQUENTIAL:
            why = f"model {model} trains on sequences with negatives drawn per position"
        elif sampler.name == "in_batch":
            why = "sampler 'in_batch' takes its negatives from the whole batch"
        elif getattr(sampler, "max_item_share", None) is not None:
            why = f"sampler {sampler.name!r} with max_item_share caps items over the whole epoch"
        elif self.train.resume:
            why = "train.resume reads a checkpoint, which distributed runs do not write"
        if why:
            raise ValueError(
                f"train.distributed.workers={workers} splits each batch of the negative pool "
                f"over Ray workers, but {why}: set train.distributed.workers=1"
            )

    @model_validator(mode="after")
    def _metric_known(self) -> Config:
        from negsamp.metrics_names import CATALOG_LEVEL, headline_names

        known = headline_names(self.evaluate.ks)
        metric = self.registry.metric
        if metric not in known:
            raise ValueError(
                f"registry.metric={metric!r} is not computed; "
                f"choose one of {sorted(known)} (evaluate.ks decides which K exist)"
            )
        if self.registry.require_significance and metric.rsplit("_", 1)[0] in CATALOG_LEVEL:
            raise ValueError(
                f"registry.require_significance needs a per-user metric, but {metric} is one "
                "number per model (no paired test over users): choose a per-user metric "
                "or set require_significance to false"
            )
        return self
