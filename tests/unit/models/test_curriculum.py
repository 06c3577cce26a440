"""The hardness curriculum of ``mixed``: hard_fraction over epochs, used and logged per epoch."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import train as trainer
from negsamp.config import HardSamplerCfg, MixedSamplerCfg, TrainCfg
from negsamp.samplers import batch as sb
from tests.unit.models.conftest import one_thread  # noqa: F401 - the autouse fixture
from tests.unit.models.helpers import checkerboard, make, uniform_pool


def test_schedules_and_the_pool_width_cover_every_epoch() -> None:
    lin = MixedSamplerCfg(
        n_neg=4, hard_fraction=0.5, schedule="linear", hard_fraction_start=0.0, schedule_epochs=2
    )
    assert [lin.hard_fraction_at(e) for e in range(4)] == [0.0, 0.25, 0.5, 0.5]
    assert lin.n_random == 4 and lin.n_hard == 2 and lin.pool_width == 32 + 4
    step = MixedSamplerCfg(
        n_neg=4, hard_fraction=0.25, schedule="step", hard_fraction_start=0.75, schedule_epochs=3
    )
    assert [step.n_hard_at(e) for e in range(5)] == [3, 3, 3, 1, 1]
    assert step.n_hard == 3 and step.n_random == 3
    const = MixedSamplerCfg(n_neg=4, hard_fraction=0.5, hard_fraction_start=1.0)
    assert const.n_hard_at(7) == 2 and const.pool_width == 32 + 2  # start ignored
    with pytest.raises(ValueError, match="4 hard negatives exceed candidates=3"):
        MixedSamplerCfg(n_neg=4, candidates=3, schedule="linear", hard_fraction_start=1.0)


def test_mixed_uses_and_logs_the_scheduled_hard_fraction(monkeypatch: pytest.MonkeyPatch) -> None:
    train, held = checkerboard()
    valid = pl.DataFrame({"user": np.arange(train.n_users, dtype=np.int32), "item": held})
    val = trainer.Validation.build(train, valid, "sampled_hr_3", 5, seed=0, batch=64)
    used: list[int] = []
    real = sb.hard_negatives

    def spy(score, users, cands, k, temperature, gen):  # noqa: ANN001, ANN202
        used.append(k)
        return real(score, users, cands, k, temperature, gen)

    monkeypatch.setattr(sb, "hard_negatives", spy)
    sampler = MixedSamplerCfg(
        n_neg=4,
        candidates=6,
        hard_fraction=0.5,
        schedule="linear",
        hard_fraction_start=0.0,
        schedule_epochs=2,
    )
    cfg = TrainCfg(epochs=4, batch_size=10_000, patience=0, checkpoint=False, lr=0.05)
    pool = uniform_pool(train, sampler.pool_width, 2)
    hist = trainer.fit(
        make("bpr", train),
        pool,
        cfg,
        0,
        torch.device("cpu"),
        valid=val,
        sampler=sampler,
        train=train,
    )
    assert [h["hard_fraction"] for h in hist] == [0.0, 0.25, 0.5, 0.5]
    assert used == [1, 2, 2]  # epoch 0 draws no hard negative (one batch per epoch)


def test_hard_softmax_temperature_follows_its_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = HardSamplerCfg(
        candidates=6, k=2, temperature=0.5, schedule="linear", temperature_start=2.5,
        schedule_epochs=2,
    )  # fmt: skip
    assert [cfg.temperature_at(e) for e in range(4)] == [2.5, 1.5, 0.5, 0.5]
    assert HardSamplerCfg(temperature=None).temperature_at(3) is None
    with pytest.raises(ValueError, match="set temperature"):
        HardSamplerCfg(schedule="step")
    train, _ = checkerboard()
    used: list[float] = []
    real = sb.hard_negatives

    def spy(score, users, cands, k, temperature, gen):  # noqa: ANN001, ANN202
        used.append(temperature)
        return real(score, users, cands, k, temperature, gen)

    monkeypatch.setattr(sb, "hard_negatives", spy)
    run = TrainCfg(epochs=3, batch_size=10_000, patience=0, checkpoint=False)
    hist = trainer.fit(
        make("bpr", train), uniform_pool(train, 6, 2), run, 0, torch.device("cpu"),
        sampler=cfg, train=train,
    )  # fmt: skip
    assert [h["temperature"] for h in hist] == used == [2.5, 1.5, 0.5]
