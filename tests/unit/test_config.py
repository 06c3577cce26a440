"""The typed config: defaults mirror params.yaml, unknown keys and bad values are rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from negsamp import config
from negsamp.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_params_yaml_is_valid_and_every_key_is_commented() -> None:
    cfg = config.load(REPO / "params.yaml")
    assert cfg.sampler.name == "uniform" and cfg.model.name == "bpr"
    for line in (REPO / "params.yaml").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            assert "#" in line, f"params.yaml key without a comment: {line!r}"


def test_unknown_key_is_rejected_with_its_path(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("sampler:\n  name: uniform\n  n_negs: 4\n")
    with pytest.raises(ConfigError, match=r"sampler\.uniform\.n_negs: unknown key"):
        config.load(p)


def test_unknown_sampler_name_lists_choices(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("sampler:\n  name: magic\n")
    with pytest.raises(ConfigError, match="uniform.*popularity"):
        config.load(p)


def test_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("sampler:\n  name: uniform\n")
    cfg = config.load(p, ["sampler.name=popularity", "sampler.alpha=0.5", "train.epochs=3"])
    assert cfg.sampler.alpha == 0.5 and cfg.train.epochs == 3
    with pytest.raises(ConfigError, match="alpha"):
        config.load(p, ["sampler.name=popularity", "sampler.alpha=2"])


def test_registry_metric_must_be_computed(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("registry:\n  metric: sampled_hr_7\n")
    with pytest.raises(ConfigError, match="sampled_hr_7"):
        config.load(p)


def test_write_overrides_keeps_comments_and_refuses_bad_values(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text((REPO / "params.yaml").read_text())
    changed = config.write_overrides(p, ["sampler.n_neg=8", "base.seed=42"])
    assert changed == ["sampler.n_neg=8"]  # the seed already was 42
    text = p.read_text()
    assert "n_neg: 8" in text and "# int >= 1: negatives per training positive" in text
    assert yaml.safe_load(text)["sampler"]["n_neg"] == 8
    before = p.read_text()
    with pytest.raises(ConfigError):
        config.write_overrides(p, ["sampler.n_neg=0"])
    assert p.read_text() == before


def test_variant_switching_plugin_starts_from_its_own_defaults() -> None:
    cfg = config.from_dict(
        {
            "model": {"name": "bpr", "loss": "bpr", "factors": 128},
            "sampler": {"name": "uniform", "n_neg": 8},
            "sweep": {
                "configs": {
                    "lmf": {"model": {"name": "lmf"}},
                    "pop": {"sampler": {"name": "popularity", "alpha": 0.5}},
                    "hard": {"sampler": {"name": "hard"}},
                }
            },
        }
    )
    lmf = cfg.variant("lmf").model
    # bpr's default loss is not carried to lmf; the factors changed in params.yaml are
    assert lmf.name == "lmf" and lmf.loss == config.LMFCfg().loss and lmf.factors == 128
    assert lmf.lr == config.LMFCfg().lr
    pop = cfg.variant("pop").sampler
    assert pop.name == "popularity" and pop.alpha == 0.5 and pop.n_neg == 8
    hard = cfg.variant("hard").sampler  # hard has no n_neg: nothing of it leaks in
    assert hard.name == "hard" and hard.k == config.HardSamplerCfg().k
    with pytest.raises(ConfigError, match="in_batch"):
        config.from_dict({"sweep": {"configs": {"x": {"sampler": {"name": "nope"}}}}})
