"""Sequential models (issue #19): the causal mask, per-position negatives, gBCE, full CE,
the windows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from torch.nn import functional as F

from negsamp import sequential
from negsamp.config import InBatchSamplerCfg, PopularitySamplerCfg, UniformSamplerCfg
from negsamp.interactions import Interactions
from negsamp.models import build_model, losses, model_config
from negsamp.samplers.exact import no_exclusions
from tests.unit.models.helpers import SMALL

N_ITEMS = 12


def _model(seed: int = 0, name: str = "sasrec", **kw: object):  # noqa: ANN202
    deeper = {"sasrec": {"num_blocks": 2}, "gru4rec": {"num_layers": 2}}[name]
    cfg = model_config({"name": name, **SMALL[name], **deeper, **kw})
    return build_model(cfg, 3, N_ITEMS, torch.Generator().manual_seed(seed)).eval()


@pytest.mark.parametrize(("name", "kw"), [("sasrec", {"num_heads": 2}), ("gru4rec", {})])
def test_a_position_never_sees_a_later_item(name: str, kw: dict) -> None:
    model = _model(name=name, **kw)
    seq = torch.tensor([[N_ITEMS, N_ITEMS, 3, 7, 1, 9, 4, 2, 5, 0]])
    for j in (4, 9):  # change the item at position j: outputs before j stay, from j on move
        other = seq.clone()
        other[0, j] = 11
        with torch.no_grad():
            a, b = model.encode(seq), model.encode(other)
        torch.testing.assert_close(a[:, :j], b[:, :j], rtol=0, atol=0)
        assert not torch.allclose(a[:, j], b[:, j])
    # so the scores of every earlier position's next item are unchanged too
    with torch.no_grad():
        s_a = a[0, :9] @ model.item_vectors().T
        s_b = b[0, :9] @ model.item_vectors().T
    assert torch.equal(s_a, s_b)


def test_left_padding_does_not_change_the_scores() -> None:
    model = _model()
    short = torch.tensor([[3, 7, 1]])
    padded = torch.tensor([[N_ITEMS] * 7 + [3, 7, 1]])
    with torch.no_grad():
        torch.testing.assert_close(
            model.score_sequences(short), model.score_sequences(padded), atol=1e-5, rtol=1e-5
        )


def test_windows_cut_the_sequence_from_the_latest_backwards() -> None:
    frame = pl.DataFrame(
        {
            "user": [0, 0, 0, 0, 0, 1, 1],
            "item": [5, 3, 8, 1, 2, 4, 6],
            "timestamp": [1, 2, 3, 4, 5, 9, 8],
        }
    )
    w = sequential.windows(frame, 2, 10)
    # user 0: 5 3 8 1 2 -> targets 3 8 1 2 from inputs 5 3 8 1; user 1 (by time): 6 -> 4
    assert w.users.tolist() == [0, 0, 1]
    assert w.inputs.tolist() == [[8, 1], [5, 3], [10, 6]]
    assert w.targets.tolist() == [[1, 2], [3, 8], [10, 4]]
    h = sequential.histories(frame, 3, 3, 10)
    assert h.tolist() == [[8, 1, 2], [10, 6, 4], [10, 10, 10]]
    # the saved model scores after training + validation item: the test item follows it
    valid = pl.DataFrame({"user": [0, 2], "item": [9, 7]})
    h = sequential.histories(sequential.followed_by(frame, valid), 3, 3, 10)
    assert h.tolist() == [[1, 2, 9], [10, 6, 4], [10, 10, 7]]


@pytest.mark.parametrize("sampler", [UniformSamplerCfg(n_neg=8), PopularitySamplerCfg(n_neg=8)])
def test_negatives_are_never_an_item_of_the_users_sequence(sampler) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(6), 9)  # each user has 9 of the 12 items
    items = np.concatenate([rng.choice(N_ITEMS, 9, replace=False) for _ in range(6)])
    seq = Interactions.from_arrays(users, items, 6, N_ITEMS)
    positions = torch.as_tensor(np.repeat(np.arange(6), 50))
    gen = torch.Generator().manual_seed(0)
    negs = sequential.Negatives(sampler, seq, seq.item_counts(), "cpu")(positions, gen)
    assert negs.shape == (300, 8)
    assert not seq.contains(positions.numpy()[:, None], negs.numpy()).any()
    # exclude: none may draw them (3 of 12 items are free: most draws are the user's)
    free = sequential.Negatives(sampler, no_exclusions(6, N_ITEMS), seq.item_counts(), "cpu")
    assert seq.contains(positions.numpy()[:, None], free(positions, gen).numpy()).any()


def test_gbce_is_bce_at_t_0_and_follows_the_paper() -> None:
    g = torch.Generator().manual_seed(0)
    s_pos, s_neg = torch.randn(5, generator=g), torch.randn(5, 16, generator=g)
    assert losses.gbce_beta(16, 1001, 0.0) == pytest.approx(1.0)
    torch.testing.assert_close(losses.gbce(s_pos, s_neg, 1.0), losses.bce(s_pos, s_neg))
    # Petrov & Macdonald 2023: alpha = k / (|I| - 1), beta = alpha (t (1 - 1/alpha) + 1/alpha)
    alpha, t = 16 / 1000, 0.75
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    assert losses.gbce_beta(16, 1001, t) == pytest.approx(beta)
    assert losses.gbce_beta(16, 1001, 1.0) == pytest.approx(alpha)
    by_hand = -(beta * torch.log(torch.sigmoid(s_pos)) + torch.log(torch.sigmoid(-s_neg)).sum(1))
    torch.testing.assert_close(losses.gbce(s_pos, s_neg, beta), by_hand / 17)


def test_full_ce_is_cross_entropy_over_the_whole_catalog() -> None:
    model = _model()
    seq = torch.tensor([[N_ITEMS, 4, 2, 9], [1, 5, 3, 7]])
    nxt = torch.tensor([6, 0])
    with torch.no_grad():
        h = model.encode(seq)[:, -1]
        got = sequential.position_loss(
            model, h, torch.tensor([0, 1]), nxt, "full_softmax", None, None
        )
        ref = F.cross_entropy(model.score_sequences(seq), nxt, reduction="none")
    torch.testing.assert_close(got, ref)


def test_in_batch_never_uses_an_item_of_the_users_sequence() -> None:
    model = _model()
    seq = Interactions.from_arrays(np.array([0, 0, 1]), np.array([2, 5, 5]), 3, N_ITEMS)
    h = torch.randn(3, model.cfg.hidden, generator=torch.Generator().manual_seed(0))
    users, targets = torch.tensor([0, 0, 1]), torch.tensor([2, 5, 5])
    got = sequential.position_loss(
        model, h, users, targets, "bce", None, None, in_batch=sequential.TorchPositives(seq, "cpu")
    )
    # the batch's items are 2 and 5, both user 0's: its rows see only their own target
    assert torch.allclose(got[:2], torch.zeros(2), atol=1e-6)
    assert got[2] > 0  # user 1 has 2 as a negative


def test_a_sequential_model_refuses_a_sampler_it_cannot_draw_from() -> None:
    from negsamp.config import Config

    with pytest.raises(ValueError, match="sampler.name to one of uniform, popularity, in_batch"):
        Config.model_validate({"model": {"name": "sasrec"}, "sampler": {"name": "hard"}})


@pytest.mark.parametrize(
    ("loss", "sampler"),
    [
        ("bce", UniformSamplerCfg(n_neg=3)),
        ("gbce", PopularitySamplerCfg(n_neg=3)),
        ("sampled_softmax", UniformSamplerCfg(n_neg=3)),
        ("sampled_softmax", InBatchSamplerCfg()),
        ("full_softmax", UniformSamplerCfg(n_neg=3)),
    ],
)
def test_every_loss_trains_and_the_same_seed_gives_the_same_weights(loss, sampler) -> None:  # noqa: ANN001
    from negsamp.config import TrainCfg
    from tests.unit.models.helpers import checkerboard, sequence_frame

    train, _ = checkerboard(8, 10)
    frame = sequence_frame(train)
    rows = sequential.windows(frame, 4, train.n_items)
    cfg = TrainCfg(epochs=2, patience=0, checkpoint=False)
    states = []
    for _ in range(2):
        model = build_model(
            model_config({"name": "sasrec", **SMALL["sasrec"], "max_len": 4, "loss": loss}),
            train.n_users,
            train.n_items,
            torch.Generator().manual_seed(0),
        )
        history = sequential.fit(
            model, rows, cfg, 7, torch.device("cpu"), sampler=sampler, exclude=train,
            item_counts=train.item_counts(),
        )  # fmt: skip
        assert all(np.isfinite(r["loss"]) for r in history)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_the_bce_offset_is_log_n_neg_and_zero_for_one_negative() -> None:
    model = _model()
    h = torch.randn(4, model.cfg.hidden, generator=torch.Generator().manual_seed(1))
    users, targets = torch.zeros(4, dtype=torch.long), torch.tensor([1, 2, 3, 4])
    negs = torch.tensor([[5, 6, 7, 8]] * 4)
    with torch.no_grad():
        s_pos = (h * model.item_vectors(targets)).sum(-1)
        s_neg = torch.bmm(model.item_vectors(negs), h.unsqueeze(2)).squeeze(2)
        got = sequential.position_loss(model, h, users, targets, "bce", lambda u: negs, None)
        torch.testing.assert_close(got, losses.bce(s_pos - np.log(4), s_neg - np.log(4)))
        one = sequential.position_loss(model, h, users, targets, "bce", lambda u: negs[:, :1], None)
        torch.testing.assert_close(one, losses.bce(s_pos, s_neg[:, :1]))  # plain SASRec BCE
