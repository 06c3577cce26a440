"""The typed, frozen configuration tree that mirrors params.yaml.

params.yaml is the single source of truth. It is parsed once at the entry point (CLI or
flow) into :class:`Config`, overrides from every route are applied by one function
(:func:`negsamp.config.overrides.apply`) before one validation, and typed sub-configs are
passed down. Unknown keys are rejected so a typo never silently falls back to a default.

Modules: ``base`` (the frozen base, the error), ``data`` / ``run`` (plain sections),
``plugins`` / ``samplers`` / ``models`` (sections whose ``name`` picks a plug-in),
``tree`` (:class:`Config`), ``overrides`` (the one way to change a document) and ``load``
(read, validate, write back).
"""

from negsamp.config.base import PARAMS_FILE, ConfigError
from negsamp.config.data import (
    AppendBase,
    AppendCfg,
    BaseCfg,
    ColumnsCfg,
    DataCfg,
    ItemFeaturesCfg,
    SplitCfg,
    SyntheticCfg,
    ValidateCfg,
)
from negsamp.config.load import (
    dump,
    flatten,
    from_dict,
    load,
    read_document,
    update,
    write_overrides,
)
from negsamp.config.models import (
    BPRCfg,
    GMFCfg,
    GRU4RecCfg,
    IALSCfg,
    LMFCfg,
    MLPCfg,
    ModelCfg,
    ModelSection,
    NeuMFCfg,
    SASRecCfg,
)
from negsamp.config.overrides import parse as parse_override
from negsamp.config.run import (
    DriftCfg,
    EvaluateCfg,
    RegistryCfg,
    ScheduleCfg,
    SweepCfg,
    TrainCfg,
    VariantCfg,
)
from negsamp.config.samplers import (
    HardSamplerCfg,
    InBatchSamplerCfg,
    MixedSamplerCfg,
    PopularitySamplerCfg,
    SamplerCfg,
    SamplerSection,
    StratifiedSamplerCfg,
    TeacherHardSamplerCfg,
    UniformSamplerCfg,
)
from negsamp.config.tree import Config

__all__ = [
    "PARAMS_FILE",
    "AppendBase",
    "AppendCfg",
    "BPRCfg",
    "BaseCfg",
    "ColumnsCfg",
    "Config",
    "ConfigError",
    "DataCfg",
    "ItemFeaturesCfg",
    "DriftCfg",
    "EvaluateCfg",
    "GMFCfg",
    "HardSamplerCfg",
    "IALSCfg",
    "SASRecCfg",
    "GRU4RecCfg",
    "InBatchSamplerCfg",
    "LMFCfg",
    "MLPCfg",
    "MixedSamplerCfg",
    "ModelCfg",
    "ModelSection",
    "NeuMFCfg",
    "PopularitySamplerCfg",
    "RegistryCfg",
    "SamplerCfg",
    "SamplerSection",
    "ScheduleCfg",
    "SplitCfg",
    "StratifiedSamplerCfg",
    "SweepCfg",
    "SyntheticCfg",
    "TeacherHardSamplerCfg",
    "TrainCfg",
    "UniformSamplerCfg",
    "ValidateCfg",
    "VariantCfg",
    "dump",
    "flatten",
    "from_dict",
    "load",
    "parse_override",
    "read_document",
    "update",
    "write_overrides",
]
