"""Search spaces declared beside the plug-in configurations (issue #15 point 6)."""

from __future__ import annotations

import pytest

from negsamp import config, tune
from negsamp.config import ModelSection, SamplerSection
from negsamp.config.models import SEQUENTIAL
from negsamp.config.search import Float, Int


class _Mid:
    """A stand-in trial that suggests each range's midpoint."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return (low * high) ** 0.5 if log else (low + high) / 2

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        return (low + high) // 2


@pytest.mark.parametrize("model", sorted(ModelSection.RESOLVED))
def test_every_model_declares_a_space_its_config_accepts(model: str) -> None:
    cfg = config.from_dict({"model": {"name": model}})
    space = tune.search_space(cfg)
    size = "hidden" if model in SEQUENTIAL else "factors"  # a sequential model's width (#19)
    assert ("model", model, size) in space
    values = {path: dim.suggest(_Mid(), ".".join(path)) for path, dim in space.items()}
    trial = tune.trial_config(cfg, values)
    for path, value in values.items():
        if path[0] == "model":
            assert getattr(trial.model.active, path[-1]) == value


@pytest.mark.parametrize("sampler", sorted(SamplerSection.RESOLVED))
def test_every_sampler_space_is_applied_as_overrides(sampler: str) -> None:
    cfg = config.from_dict({"sampler": {"name": sampler}})
    space = SamplerSection.search_space(sampler)
    values = {path: dim.suggest(_Mid(), ".".join(path)) for path, dim in space.items()}
    trial = tune.trial_config(cfg, values)
    for path, value in values.items():
        assert getattr(trial.sampler.active, path[-1]) == value
    want = {"popularity": "alpha", "mixed": "hard_fraction", "hard": "k"}.get(sampler)
    assert want is None or any(p[-1] == want for p in space)


def test_shared_and_own_settings_get_their_params_yaml_paths() -> None:
    space = SamplerSection.search_space("popularity")
    assert space[("sampler", "n_neg")] == Int(1, 16, log=True)
    assert space[("sampler", "popularity", "alpha")] == Float(0.0, 1.0)


def test_the_entry_reproduces_the_trial_through_sweep_configs() -> None:
    cfg = config.from_dict({"sampler": {"name": "popularity"}})
    values = {("model", "bpr", "lr"): 0.02, ("sampler", "popularity", "alpha"): 0.3}
    doc = config.dump(cfg)
    doc["sweep"]["configs"]["tuned"] = tune.entry(cfg, values)
    variant = config.from_dict(doc).variant("tuned")
    assert variant.model.active.lr == 0.02 and variant.sampler.active.alpha == 0.3
    trial = tune.trial_config(cfg, values)
    assert (variant.model, variant.sampler, variant.train) == (
        trial.model,
        trial.sampler,
        trial.train,
    )


def test_a_set_train_lr_is_refused() -> None:
    cfg = config.from_dict({"train": {"lr": 0.01}})
    with pytest.raises(config.ConfigError, match="train.lr is set"):
        tune.search_space(cfg)


def test_update_keeps_null_and_writes_floats_every_reader_parses(tmp_path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("train:  # the trainer\n  lr: null  # float | null\n  epochs: 5\n")
    config.update(
        p, [(("train", "epochs"), 7), (("sweep", "configs", "x"), {"train": {"l2": 1e-05}})]
    )
    text = p.read_text()
    assert "  lr: null  # float | null\n" in text and "l2: 1.0e-05" in text
    assert config.load(p).variant("x").train.l2 == 1e-05


def test_the_first_trial_is_the_configuration_as_it_is() -> None:
    """Issue #15: eight trials on MovieLens-100k found nothing as good as the hand-set BPR
    defaults; trial 0 now trains them, so the best is never worse on validation."""
    cfg = config.from_dict({"sampler": {"name": "popularity"}})
    space = tune.search_space(cfg)
    start = tune.baseline(cfg, space)
    assert start[("sampler", "n_neg")] == cfg.sampler.n_neg
    assert start[("sampler", "popularity", "alpha")] == cfg.sampler.active.alpha
    assert start[("model", "bpr", "lr")] == cfg.model.active.lr
    assert tune.trial_config(cfg, start) == cfg  # the very configuration params.yaml trains

    seen: list[dict] = []

    class _Tracker:
        def trial_started(self, number: int, params: dict) -> int:
            seen.append(params)
            return number

        def epoch(self, handle: int, row: dict) -> None: ...

        def trial_finished(self, *args: object) -> None: ...

    def fit(trial_cfg: config.Config, data: object, on_epoch) -> None:
        on_epoch({"epoch": 1, "valid_sampled_ndcg_10": 0.5 if trial_cfg == cfg else 0.1})

    outcome, best = tune.run(cfg, None, 3, _Tracker(), fit=fit)
    assert seen[0] == {".".join(p): v for p, v in start.items()}
    assert outcome.best.number == 0 and best == start
    outside = config.from_dict({"sampler": {"n_neg": 64}})  # beyond the space's 16
    assert tune.baseline(outside, tune.search_space(outside)) == {}
