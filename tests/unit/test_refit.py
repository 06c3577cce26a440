"""negsamp.refit (issue #13, point 2): the winner trained again on every interaction, for
the epochs early stopping kept, deterministically; and kept_epochs, which counts them."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import refit as refits
from negsamp import train as trainer
from negsamp.config import BPRCfg, IALSCfg, TrainCfg
from negsamp.config.samplers import InBatchSamplerCfg, UniformSamplerCfg
from negsamp.sweep.select import kept_epochs, kept_value

N_USERS, N_ITEMS = 12, 20
CPU = torch.device("cpu")


def _log(seed: int = 0) -> pl.DataFrame:
    """Every user's 5 interactions (timestamps 0..4), one row per pair."""
    rng = np.random.default_rng(seed)
    rows = [
        (u, int(i), t) for u in range(N_USERS) for t, i in enumerate(rng.choice(N_ITEMS, 5, False))
    ]
    u, i, t = map(np.array, zip(*rows, strict=True))
    return pl.DataFrame(
        {"user": u, "item": i, "count": np.ones_like(u), "timestamp": t},
        schema_overrides={"user": pl.Int32, "item": pl.Int32, "count": pl.Int32},
    ).sort("user", "item")


def _run(model=None, sampler=None, epochs: int = 3, seed: int = 7, frame=None) -> refits.Refit:
    return refits.refit(
        model or BPRCfg(factors=4),
        sampler or UniformSamplerCfg(n_neg=2, pool_epochs=2),
        TrainCfg(batch_size=16, epochs=50, patience=2),
        _log() if frame is None else frame,
        N_USERS,
        N_ITEMS,
        epochs,
        seed,
        CPU,
    )


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    ("values", "restore_best", "want"),
    [
        ([0.1, 0.3, 0.3, 0.2], True, 2),  # the first best epoch, as _Progress keeps it
        ([0.1, 0.3, 0.2], False, 3),  # no restore: the last epoch's weights
        ([0.1, math.nan, 0.05], True, 1),  # a NaN epoch is never the best
        ([math.nan, math.nan], True, 2),  # none finite: the last epoch's weights stay
    ],
)
def test_kept_epochs_counts_to_the_epoch_kept_value_reads(values, restore_best, want) -> None:
    history = [{"epoch": e, "valid_m": v} for e, v in enumerate(values)]
    assert kept_epochs(history, "m", restore_best) == want
    value = kept_value(history, "m", restore_best)
    kept = history[want - 1]["valid_m"]
    assert value == kept or (value is None and math.isnan(kept))


def test_kept_epochs_of_an_empty_history_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        kept_epochs([], "m", True)


def test_refit_is_deterministic_and_trains_exactly_the_kept_epochs() -> None:
    a, b = _run(), _run()
    assert a.epochs == 3 and len(a.history) == 3  # no early stopping, no validation
    assert not any(k.startswith("valid_") for row in a.history for k in row)
    assert a.positives == _log().height
    wa, wb = _weights(a.model), _weights(b.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    other = _weights(_run(seed=8).model)
    assert not all(torch.equal(wa[k], other[k]) for k in wa)


def test_refit_trains_on_every_positive_with_negatives_outside_the_log(monkeypatch) -> None:
    seen: dict[str, object] = {}
    fit = trainer.fit

    def spy(model, pool, cfg, *args, **kwargs):
        seen["pool"], seen["cfg"] = pool, cfg
        return fit(model, pool, cfg, *args, **kwargs)

    monkeypatch.setattr(trainer, "fit", spy)
    frame = _log()
    _run(frame=frame, epochs=2)
    pool, cfg = seen["pool"], seen["cfg"]
    pairs = set(zip(pool.users.tolist(), pool.pos.tolist(), strict=True))
    assert pairs == set(frame.select("user", "item").rows())  # held-out pairs included
    assert cfg.epochs == 2 and pool.pool_epochs == 2 and pool.negs.shape[-1] == 2
    logged = {(u, i) for u, i in frame.select("user", "item").rows()}
    users = pool.users.tolist()
    for e in range(pool.pool_epochs):
        for row, negs in enumerate(pool.negs[e].tolist()):
            assert not any((users[row], n) in logged for n in negs)


def test_refit_in_batch_draws_from_the_positives() -> None:
    r = _run(sampler=InBatchSamplerCfg(), epochs=2)
    assert r.epochs == 2 and len(r.history) == 2 and r.positives == _log().height


def test_refit_ials_runs_the_kept_iterations() -> None:
    r = _run(model=IALSCfg(factors=4, iterations=15), epochs=4)
    assert len(r.history) == 4 and r.model.cfg.iterations == 4
    again = _run(model=IALSCfg(factors=4, iterations=15), epochs=4)
    w1, w2 = _weights(r.model), _weights(again.model)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_refit_needs_an_epoch() -> None:
    with pytest.raises(ValueError, match="at least one epoch"):
        _run(epochs=0)
