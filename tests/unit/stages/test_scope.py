"""The scoped configuration a stage sees: declared keys read, anything else raises (#12)."""

from __future__ import annotations

import pytest

from negsamp.config import Config, EvaluateCfg, SamplerSection, from_dict
from negsamp.stages.scope import ScopedConfig, UndeclaredParameter, scope
from negsamp.stages.spec import StageSpec


def _spec(*params: str, per_variant: bool = False) -> StageSpec:
    return StageSpec(name="demo", params=params, deps=(), code=(), outs=(), per_variant=per_variant)


def _cfg() -> Config:
    return from_dict(
        {
            "sampler": {"name": "hard", "hard": {"k": 2}},
            "sweep": {
                "configs": {
                    "default": {},
                    "inb": {
                        "sampler": {"name": "in_batch", "in_batch": {"logq_correction": False}}
                    },
                }
            },
        }
    )


def test_a_declared_key_reads_its_value() -> None:
    cfg = scope(_cfg(), _spec("evaluate.n_eval_neg", "base.seed"))
    assert cfg.evaluate.n_eval_neg == 99
    assert cfg.base.seed == 42


def test_an_undeclared_key_raises_naming_the_key_and_the_stage() -> None:
    cfg = scope(_cfg(), _spec("evaluate.n_eval_neg"))
    with pytest.raises(UndeclaredParameter, match=r"stage 'demo' read 'evaluate\.ks'") as err:
        cfg.evaluate.ks  # noqa: B018
    assert err.value.key == "evaluate.ks" and err.value.stage == "demo"
    assert "src/negsamp/stages/demo.py" in str(err.value) and "dvc.yaml" in str(err.value)
    with pytest.raises(UndeclaredParameter, match=r"'train'"):
        cfg.train  # noqa: B018


def test_an_undeclared_key_is_not_an_attribute_error() -> None:
    """getattr(cfg, key, default) and hasattr must not swallow an undeclared read."""
    cfg = scope(_cfg(), _spec("evaluate.n_eval_neg"))
    with pytest.raises(UndeclaredParameter):
        getattr(cfg.evaluate, "ks", None)
    with pytest.raises(AttributeError):  # not a key at all: an ordinary AttributeError
        cfg.evaluate.no_such_key  # noqa: B018


def test_a_declared_section_is_the_real_typed_object() -> None:
    """Pure functions get the typed sub-config they always got (model_dump, TypeAdapter work)."""
    cfg = scope(_cfg(), _spec("evaluate", "sampler"))
    assert isinstance(cfg.evaluate, EvaluateCfg)
    assert isinstance(cfg.sampler, SamplerSection)
    assert cfg.sampler.active.k == 2
    assert cfg.evaluate.model_dump()["n_eval_neg"] == 99


def test_nested_sections_open_one_level_at_a_time() -> None:
    cfg = scope(_cfg(), _spec("sampler.hard.k", "data.columns.user"))
    assert isinstance(cfg.sampler, ScopedConfig) and isinstance(cfg.sampler.hard, ScopedConfig)
    assert cfg.sampler.hard.k == 2
    assert cfg.data.columns.user == "user"
    with pytest.raises(UndeclaredParameter, match=r"'sampler\.hard\.candidates'"):
        cfg.sampler.hard.candidates  # noqa: B018
    with pytest.raises(UndeclaredParameter, match=r"'sampler\.name'"):
        cfg.sampler.name  # noqa: B018


def test_properties_and_methods_read_the_whole_node() -> None:
    cfg = scope(_cfg(), _spec("sampler.name", "sampler.hard"))
    assert cfg.sampler.name == "hard"
    with pytest.raises(UndeclaredParameter, match=r"'sampler' \(through \.active"):
        cfg.sampler.active  # noqa: B018
    with pytest.raises(
        UndeclaredParameter, match=r"the whole configuration \(through \.model_dump"
    ):
        cfg.model_dump()


def test_the_params_key_not_the_python_name() -> None:
    """``validate`` is spelt ``validate_`` in Python; the declaration uses params.yaml's key."""
    assert scope(_cfg(), _spec("validate")).validate_.failure_examples == 5
    with pytest.raises(UndeclaredParameter, match=r"'validate'"):
        scope(_cfg(), _spec("split")).validate_  # noqa: B018


def test_variants_read_sweep_configs() -> None:
    cfg = scope(_cfg(), _spec("sweep.configs", "sampler"))
    assert cfg.variants == ["default", "inb"]
    inb = cfg.variant("inb")
    assert inb.sampler.active.logq_correction is False  # the entry applied, same scope
    with pytest.raises(UndeclaredParameter, match=r"'train'"):
        inb.train  # noqa: B018
    narrow = scope(_cfg(), _spec("sampler"))
    with pytest.raises(UndeclaredParameter, match=r"'sweep\.configs'"):
        narrow.variants  # noqa: B018
    with pytest.raises(UndeclaredParameter, match=r"'sweep\.configs\.inb'"):
        narrow.variant("inb")


def test_a_per_configuration_stage_sees_its_configuration_resolved() -> None:
    spec = _spec("sampler", "sweep.configs.${key}", per_variant=True)
    cfg = scope(_cfg(), spec, "inb")
    assert cfg.sampler.name == "in_batch"
    assert cfg.sampler.in_batch.logq_correction is False
    assert cfg.variant("inb") is cfg  # what the stage's own cfg.variant(variant) returns
    with pytest.raises(UndeclaredParameter, match=r"'sweep\.configs\.default'"):
        cfg.variant("default")
    assert scope(cfg, spec, "inb") is cfg  # scoping twice is harmless


def test_the_view_is_read_only() -> None:
    cfg = scope(_cfg(), _spec("evaluate.n_eval_neg"))
    with pytest.raises(AttributeError, match="read-only"):
        cfg.evaluate = None  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        cfg.evaluate.n_eval_neg = 5
    with pytest.raises(AttributeError, match="read-only"):
        del cfg.evaluate


def test_a_stage_declaring_every_key_gets_the_config_itself() -> None:
    full = _cfg()
    every = tuple(f.alias or n for n, f in Config.model_fields.items())
    assert scope(full, _spec(*every)) is full
    assert isinstance(scope(full, _spec(*every[1:])), ScopedConfig)


def test_enforce_scopes_every_route_into_run() -> None:
    spec = _spec("base.seed", "sweep.configs.${key}", per_variant=True)
    seen = []

    @spec.enforce
    def run(cfg: Config, paths: object = None, variant: str = "default") -> int:
        seen.append(cfg)
        return cfg.base.seed

    assert run(_cfg(), None, "inb") == 42
    assert run(_cfg(), variant="default") == 42
    assert isinstance(seen[0], ScopedConfig)
    with pytest.raises(UndeclaredParameter):
        seen[0].train  # noqa: B018
    assert run.spec is spec  # type: ignore[attr-defined]
