"""The shared trainer: crash and resume, early stopping, batch-side negatives, the stage."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import config
from negsamp import train as trainer
from negsamp.config import HardSamplerCfg, InBatchSamplerCfg, MixedSamplerCfg, TrainCfg
from negsamp.interactions import Interactions
from negsamp.paths import Paths
from tests.unit.models.conftest import one_thread  # noqa: F401 - the autouse fixture
from tests.unit.models.helpers import checkerboard, make, uniform_pool

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data() -> tuple[Interactions, trainer.Validation]:
    train, held = checkerboard()
    valid = pl.DataFrame({"user": np.arange(train.n_users, dtype=np.int32), "item": held})
    return train, trainer.Validation.build(train, valid, "sampled_hr_3", 5, seed=0, batch=64)


class Crash(RuntimeError):
    pass


def crash_after(epoch: int):  # noqa: ANN201
    def hook(row: dict) -> None:
        if row["epoch"] == epoch:
            raise Crash(f"killed after epoch {epoch}")

    return hook


def same_weights(a, b) -> bool:  # noqa: ANN001
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


CASES = {
    "bpr": ("bpr", {}, None),
    "mlp-dropout": ("mlp", {"dropout": 0.3}, None),  # the dropout generator is checkpointed
    "hard-softmax": ("bpr", {}, HardSamplerCfg(candidates=4, k=2, temperature=0.5)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_resume_after_a_crash_ends_with_the_same_weights(case: str, data, tmp_path: Path) -> None:  # noqa: ANN001
    train, valid = data
    name, kw, sampler = CASES[case]
    width = sampler.pool_width if sampler is not None else 2
    pool = uniform_pool(train, width, 3)
    cfg = TrainCfg(epochs=5, batch_size=64, patience=0, resume=True)
    run = dict(valid=valid, sampler=sampler, train=train)
    whole = make(name, train, **kw)
    want = trainer.fit(whole, pool, cfg, 7, CPU, checkpoint=tmp_path / "a.pt", **run)
    crashed = make(name, train, **kw)
    with pytest.raises(Crash):
        trainer.fit(
            crashed, pool, cfg, 7, CPU, checkpoint=tmp_path / "b.pt", on_epoch=crash_after(1), **run
        )
    again = make(name, train, **kw)  # a new process rebuilds the model from params
    got = trainer.fit(again, pool, cfg, 7, CPU, checkpoint=tmp_path / "b.pt", **run)
    assert same_weights(whole, again)
    assert [h["epoch"] for h in got] == [0, 1, 2, 3, 4]
    assert [h["loss"] for h in got] == [h["loss"] for h in want]


def test_training_never_touches_the_global_generator(data) -> None:  # noqa: ANN001
    """Issue #12: dropout and every other draw come from the run's own streams, so torch's
    global generator is neither consumed nor reseeded, and its state does not matter."""
    train, valid = data
    cfg = TrainCfg(epochs=2, batch_size=64, patience=0, checkpoint=False)
    sampler = HardSamplerCfg(candidates=4, k=2, temperature=0.5)
    pool = uniform_pool(train, sampler.pool_width, 2)
    weights = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model = make("neumf", train, dropout=0.3)  # torch's layer constructors draw globally
        before = torch.get_rng_state()
        trainer.fit(model, pool, cfg, 7, CPU, valid=valid, sampler=sampler, train=train)
        assert torch.equal(torch.get_rng_state(), before)
        weights.append(model)
    assert same_weights(*weights)


def test_more_epochs_resume_from_the_finished_run(data, tmp_path: Path) -> None:  # noqa: ANN001
    train, _ = data
    pool = uniform_pool(train, 2, 2)
    short = TrainCfg(epochs=2, batch_size=64, patience=0, resume=True)
    longer = short.model_copy(update={"epochs": 4})
    whole = make("lmf", train)
    trainer.fit(whole, pool, longer, 3, CPU, checkpoint=tmp_path / "a.pt")
    part = make("lmf", train)
    trainer.fit(part, pool, short, 3, CPU, checkpoint=tmp_path / "b.pt")
    hist = trainer.fit(part, pool, longer, 3, CPU, checkpoint=tmp_path / "b.pt")
    assert len(hist) == 4 and same_weights(whole, part)


def test_a_checkpoint_of_another_configuration_is_ignored(data, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    train, _ = data
    pool = uniform_pool(train, 2, 2)
    cfg = TrainCfg(epochs=2, batch_size=64, patience=0, resume=True)
    trainer.fit(make("bpr", train), pool, cfg, 3, CPU, checkpoint=tmp_path / "c.pt")
    other = cfg.model_copy(update={"lr": 0.01})
    with caplog.at_level(logging.WARNING):
        hist = trainer.fit(make("bpr", train), pool, other, 3, CPU, checkpoint=tmp_path / "c.pt")
    assert "another configuration" in caplog.text and len(hist) == 2


def test_a_checkpoint_without_a_generator_state_is_ignored(data, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    """A checkpoint written before the run owned its dropout generator (the global one was
    saved instead) cannot continue bit-for-bit: it starts afresh, saying why."""
    train, _ = data
    pool = uniform_pool(train, 2, 2)
    cfg = TrainCfg(epochs=2, batch_size=64, patience=0, resume=True)
    path = tmp_path / "old.pt"
    trainer.fit(make("bpr", train), pool, cfg, 3, CPU, checkpoint=path)
    blob = torch.load(path, weights_only=True)
    del blob["rng"]["dropout"]
    torch.save(blob, path)
    with caplog.at_level(logging.INFO):
        hist = trainer.fit(make("bpr", train), pool, cfg, 3, CPU, checkpoint=path)
    assert "no state for generators ['dropout']" in caplog.text and len(hist) == 2
    assert "resumed from" not in caplog.text


def test_early_stopping_stops_after_patience_epochs_without_improvement(data) -> None:  # noqa: ANN001
    train, valid = data
    cfg = TrainCfg(epochs=30, batch_size=64, patience=2, lr=1e-12, checkpoint=False)
    hist = trainer.fit(make("bpr", train), uniform_pool(train, 2, 1), cfg, 0, CPU, valid=valid)
    assert len(hist) == 3  # epoch 0 sets the best, two epochs without improvement stop it
    assert set(hist[0]) == {
        "epoch",
        "loss",
        "seconds",
        "pairs_per_second",
        "valid_sampled_hr_3",
        "valid_sampled_ndcg_3",
    }
    assert all(isinstance(v, float | int) for h in hist for v in h.values())


def test_restore_best_keeps_the_best_validation_epoch(data) -> None:  # noqa: ANN001
    train, sampled = data
    valid = trainer.Validation(sampled.frame.select("user", "item"), train, "full_ndcg_3", 64)
    cfg = TrainCfg(epochs=6, batch_size=64, patience=0, checkpoint=False)
    model = make("bpr", train)
    hist = trainer.fit(model, uniform_pool(train, 2, 2), cfg, 0, CPU, valid=valid)
    best = max(h["valid_full_ndcg_3"] for h in hist)
    assert valid(model, CPU)["valid_full_ndcg_3"] == pytest.approx(best)


BATCH_SIDE = [
    InBatchSamplerCfg(),
    InBatchSamplerCfg(logq_correction=False),
    HardSamplerCfg(candidates=6, k=2),
    MixedSamplerCfg(n_neg=4, hard_fraction=0.5, candidates=6, max_item_share=0.3),
]


@pytest.mark.parametrize("sampler", BATCH_SIDE, ids=lambda s: s.name)
def test_batch_side_negatives_learn_the_checkerboard(sampler, data) -> None:  # noqa: ANN001
    train, valid = data
    if sampler.name == "in_batch":
        pool = trainer.Pool.from_positives(train, CPU)
    else:
        pool = uniform_pool(train, sampler.pool_width, 2)
    cfg = TrainCfg(epochs=25, batch_size=64, patience=0, checkpoint=False, lr=0.05)
    hist = trainer.fit(
        make("bpr", train), pool, cfg, 0, CPU, valid=valid, sampler=sampler, train=train
    )
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["valid_sampled_hr_3"] > 0.9
    if sampler.name == "mixed":
        assert "cap_replaced" in hist[-1]


@pytest.mark.parametrize("logq", [True, False])
def test_sampled_softmax_trains_on_the_pool(data, logq: bool) -> None:  # noqa: ANN001
    train, valid = data
    cfg = TrainCfg(epochs=25, batch_size=64, patience=0, checkpoint=False, logq_correction=logq)
    model = make("bpr", train, loss="sampled_softmax")
    hist = trainer.fit(model, uniform_pool(train, 4, 2), cfg, 0, CPU, valid=valid)
    assert hist[-1]["valid_sampled_hr_3"] > 0.9


def test_recency_weights_favour_a_users_latest_positives() -> None:
    frame = pl.DataFrame({"user": [0, 0, 0, 1], "item": [5, 3, 9, 2], "timestamp": [1, 2, 2, 7]})
    w = trainer.recency_weights(frame, 4.0, 1.0)
    # user 0 in time order 5, 3, 9 (a tie goes to the larger id); rows come out by (user, item)
    assert w == pytest.approx([1 + 4 * np.exp(-1), 1 + 4 * np.exp(-2), 5.0, 5.0])
    assert trainer.recency_weights(frame, 0.0, 1.0) is None
    assert trainer.recency_weights(frame.with_columns(timestamp=None), 4.0, 1.0) is None


def test_pool_from_frame_reads_each_epoch_slice() -> None:
    df = pl.DataFrame(
        {
            "user": [1, 0, 1, 0],
            "pos_item": [4, 2, 4, 2],
            "epoch": [0, 0, 1, 1],
            "neg_items": pl.Series([[7, 8], [5, 6], [9, 1], [3, 0]], dtype=pl.Array(pl.Int32, 2)),
        }
    )
    pool = trainer.Pool.from_frame(df, CPU)
    assert pool.users.tolist() == [0, 1] and pool.pos.tolist() == [2, 4]
    assert pool.negs.tolist() == [[[5, 6], [7, 8]], [[3, 0], [9, 1]]]


# ---- the stage -------------------------------------------------------------------------


def write_inputs(paths: Paths, train: Interactions, held: np.ndarray, width: int) -> None:
    """Stage inputs by hand: id maps, split frames with timestamps, a uniform pool."""
    d = paths.root / "data"
    for sub in ("interim", "split", "pools/default"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {"raw": np.arange(train.n_users), "dense": np.arange(train.n_users)}
    ).write_parquet(paths.user_ids)
    pl.DataFrame(
        {"raw": np.arange(train.n_items), "dense": np.arange(train.n_items)}
    ).write_parquet(paths.item_ids)
    rows = train.rows()
    pl.DataFrame(
        {
            "user": rows,
            "item": train.indices,
            "count": np.ones(train.nnz, np.int32),
            "timestamp": np.arange(train.nnz),
        }
    ).write_parquet(paths.train)
    users = np.arange(train.n_users, dtype=np.int32)
    valid = pl.DataFrame(
        {"user": users, "item": held.astype(np.int32), "count": 1, "timestamp": 10**6}
    )
    valid.write_parquet(paths.valid)
    valid.head(0).write_parquet(paths.test)  # read for the validation candidates (issue #18)
    pool = uniform_pool(train, width, 2)
    n = rows.size
    pl.DataFrame(
        {
            "user": np.tile(rows, 2),
            "pos_item": np.tile(train.indices, 2),
            "epoch": np.repeat(np.arange(2, dtype=np.int16), n),
            "neg_items": pl.Series(
                pool.negs.reshape(2 * n, width).numpy().astype(np.int32),
                dtype=pl.Array(pl.Int32, width),
            ),
        }
    ).write_parquet(paths.train_pool)


STAGE_CASES = {
    "bpr": {"model": {"name": "bpr", "bpr": {"factors": 4, "lr": 0.05, "recency_boost": 2.0}}},
    "ials": {"model": {"name": "ials", "ials": {"factors": 4, "reg": 1.0, "iterations": 3}}},
    "bpr_weighted": {  # #14: each positive's loss weighs 1 + log1p(count), mean 1
        "model": {"name": "bpr", "bpr": {"factors": 4, "lr": 0.05}},
        "train": {"epochs": 3, "batch_size": 64, "positive_weight": "log"},
    },
    "in_batch": {
        "model": {"name": "lmf", "lmf": {"factors": 4, "lr": 0.05}},
        "sampler": {"name": "in_batch"},
    },
}


@pytest.mark.parametrize("case", list(STAGE_CASES))
def test_stage_writes_model_history_and_checkpoint(case: str, tmp_path: Path, caplog) -> None:
    from negsamp.models import load_model
    from negsamp.stages import train as stage

    train, held = checkerboard()
    paths = Paths(root=tmp_path)
    write_inputs(paths, train, held, 2)
    raw = {
        "base": {"device": "cpu"},
        "sampler": {"name": "uniform", "n_neg": 2, "pool_epochs": 2},
        "train": {"epochs": 3, "batch_size": 64},
        "evaluate": {"n_eval_neg": 5},
        **STAGE_CASES[case],
    }
    with caplog.at_level(logging.INFO):
        out = stage.run(config.from_dict(raw), paths)
    history = json.loads(paths.train_history.read_text())
    assert out["epochs"] == len(history) == 3 and "valid_sampled_ndcg_10" in history[-1]
    assert load_model(paths.model_dir).n_items == train.n_items
    assert stage.checkpoint_path(paths) == tmp_path / "data/models/default/checkpoint.pt"
    assert stage.checkpoint_path(paths).is_file() == (case != "ials")
    if case == "ials":
        assert "sampler 'uniform' and its pool are ignored" in caplog.text


def test_stage_hands_the_mixed_cap_the_train_valid_exclusions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #12: ``mixed`` with ``max_item_share`` and ``exclude: train+valid`` gets the
    training and validation positives for its redraws (the pool's exclusion set)."""
    from negsamp.stages import train as stage

    train, held = checkerboard()
    paths = Paths(root=tmp_path)
    sampler = {"name": "mixed", "n_neg": 2, "mixed": {"candidates": 2, "max_item_share": 0.2}}
    raw = {
        "base": {"device": "cpu"},
        "model": {"name": "bpr", "bpr": {"factors": 4}},
        "sampler": sampler | {"exclude": "train+valid", "pool_epochs": 2},
        "train": {"epochs": 1, "batch_size": 64},
        "evaluate": {"n_eval_neg": 5},
    }
    cfg = config.from_dict(raw)
    write_inputs(paths, train, held, cfg.sampler.active.pool_width)
    seen = {}
    fit = trainer.fit

    def spy(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        seen["exclude"] = kw["exclude"]
        return fit(*args, **kw)

    monkeypatch.setattr(trainer, "fit", spy)
    stage.run(cfg, paths)
    got = seen["exclude"]
    assert got.nnz == train.nnz + train.n_users  # every held-out item is a validation positive
    assert got.contains(np.arange(train.n_users), held).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["bpr", "neumf", "ials"])
def test_cuda_training_with_mixed_precision(name: str, data) -> None:  # noqa: ANN001
    train, valid = data
    cuda = torch.device("cuda")
    cfg = TrainCfg(epochs=15, batch_size=64, patience=0, checkpoint=False, precision="auto")
    model = make(name, train)
    if model.trains_on_pool:
        pool = uniform_pool(train, 4, 2)
        pool = trainer.Pool(pool.users.to(cuda), pool.pos.to(cuda), pool.negs.to(cuda))
        trainer.fit(model, pool, cfg, 0, cuda, valid=valid)
    else:
        trainer.fit_closed_form(model, train, cfg, cuda, valid)
    assert valid(model, cuda)["valid_sampled_hr_3"] > 0.9


# --------------------------------------------------------------------------- #14: strength


def test_confidence_is_the_counts_unless_log_or_recency() -> None:
    """Without a weight column or log confidence, iALS sees exactly the counts it saw before."""
    from negsamp.config.models import IALSCfg

    train = Interactions.from_arrays(
        np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2, np.array([1.0, 3.0, 9.0])
    )
    assert trainer.confidence(train, IALSCfg(), None) is train
    log_cfg = IALSCfg(confidence="log", epsilon=2.0)
    got = trainer.confidence(train, log_cfg, np.array([1.0, 2.0, 1.0], np.float32))
    assert got.counts == pytest.approx(np.log1p(np.array([0.5, 1.5, 4.5])) * [1, 2, 1], rel=1e-6)


def test_positive_weights_normalise_the_strength() -> None:
    train = Interactions.from_arrays(
        np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2, np.array([1.0, 3.0, 8.0])
    )
    recency = np.array([2.0, 1.0, 1.0], np.float32)
    assert trainer.positive_weights(train, "none", None) is None
    assert trainer.positive_weights(train, "none", recency) is recency
    assert trainer.positive_weights(train, "linear", None) == pytest.approx([0.25, 0.75, 2.0])
    log_w = 1 + np.log1p([1.0, 3.0, 8.0])
    assert trainer.positive_weights(train, "log", recency) == pytest.approx(
        log_w / log_w.mean() * [2, 1, 1], rel=1e-6
    )


def test_weight_column_is_the_strength_of_the_csr() -> None:
    frame = pl.DataFrame({"user": [0, 1], "item": [1, 0], "count": [2, 1], "weight": [7.5, 0.5]})
    assert Interactions.from_frame(frame, 2, 2).counts.tolist() == [7.5, 0.5]
    assert Interactions.from_frame(frame.drop("weight"), 2, 2).counts.tolist() == [2.0, 1.0]


@pytest.mark.parametrize("monitor", ["sampled_hr_10", "full_ndcg_10"])
def test_issue_18_validation_never_ranks_against_the_users_test_item(monitor: str) -> None:
    """Issue #18: the user's test item is neither a validation candidate nor, in full
    ranking, a competitor of the validation item (it was for 62 of 943 ML-100k users)."""
    n_users, n_items = 40, 30
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), 3)
    items = np.concatenate([rng.choice(n_items, 3, replace=False) for _ in range(n_users)])
    train = Interactions.from_arrays(users[0::3], items[0::3], n_users, n_items)
    valid = pl.DataFrame(
        {"user": users[1::3], "item": items[1::3]}, schema=[("user", pl.Int32), ("item", pl.Int32)]
    )
    test = pl.DataFrame(
        {"user": users[2::3], "item": items[2::3]}, schema=[("user", pl.Int32), ("item", pl.Int32)]
    )
    # 25 of the 27 items the user has not seen in train/valid: without the fix the test
    # item is a candidate of almost every user
    v = trainer.Validation.build(train, valid, monitor, 25, seed=0, batch=64, test=test)
    if monitor.startswith("sampled"):
        cands = v.frame["candidates"].to_numpy()
        assert not (cands == test["item"].to_numpy()[:, None]).any()
        assert not (cands == valid["item"].to_numpy()[:, None]).any()
    # full ranking masks it: a model scoring each user's test item highest still ranks
    # the validation item first
    test_items = torch.tensor(test["item"].to_numpy(), dtype=torch.long)
    valid_items = torch.tensor(valid["item"].to_numpy(), dtype=torch.long)

    class Cheat:
        def score_all(self, u: torch.Tensor) -> torch.Tensor:
            s = torch.zeros(len(u), n_items)
            s[torch.arange(len(u)), valid_items[u]] = 1.0
            s[torch.arange(len(u)), test_items[u]] = 2.0
            return s

        def score(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
            return self.score_all(u).gather(1, i)

    got = v(Cheat(), CPU)
    assert min(got.values()) == 1.0, got
    # and without the test rows the same model loses its validation hits
    plain = trainer.Validation.build(train, valid, monitor, 25, seed=0, batch=64)
    assert min(plain(Cheat(), CPU).values()) < 1.0
