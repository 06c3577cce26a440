"""Contract tests run for every registered model: a new plug-in gets them for free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from negsamp.models import load_model, registered, save_model
from tests.unit.models.helpers import checkerboard, fit, make

MODELS = registered()


@pytest.fixture(scope="module")
def board():  # noqa: ANN201
    return checkerboard()


@pytest.fixture(scope="module")
def trained(board) -> dict:  # noqa: ANN001
    train, _ = board
    return {name: fit(name, train) for name in MODELS}


def test_every_model_is_registered() -> None:
    assert MODELS == ["bpr", "gmf", "gru4rec", "ials", "lmf", "mlp", "neumf", "sasrec"]


@pytest.mark.parametrize("name", MODELS)
def test_checkerboard_held_out_in_group_item_ranks_first(name: str, board, trained) -> None:  # noqa: ANN001
    train, held = board
    items, _ = trained[name].recommend(np.arange(train.n_users), 1, exclude=train)
    assert (items[:, 0] == held).all(), f"{name} recommended {items[:, 0]}, expected {held}"


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_scores(
    name: str,
    board,
    trained,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    train, _ = board
    model = trained[name]
    save_model(model, tmp_path / name)
    back = load_model(tmp_path / name)
    users = torch.arange(train.n_users)
    items = torch.randint(
        0, train.n_items, (train.n_users, 7), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert torch.equal(model.score(users, items), back.score(users, items))
        assert torch.equal(model.score_all(users), back.score_all(users))
    assert back.cfg == model.cfg


@pytest.mark.parametrize("name", MODELS)
def test_the_same_model_saves_to_the_same_bytes(name: str, trained, tmp_path: Path) -> None:  # noqa: ANN001
    """DVC compares md5s: a retrained identical model must not look like a new one (#12)."""
    from negsamp.io import md5_file
    from negsamp.models import WEIGHTS_FILE

    save_model(trained[name], tmp_path / "a")
    save_model(trained[name], tmp_path / "b")
    assert md5_file(tmp_path / "a" / WEIGHTS_FILE) == md5_file(tmp_path / "b" / WEIGHTS_FILE)


@pytest.mark.parametrize("name", MODELS)
def test_recommend_never_returns_an_excluded_item(name: str, board, trained) -> None:  # noqa: ANN001
    train, _ = board
    users = np.arange(train.n_users)
    items, scores = trained[name].recommend(users, train.n_items, exclude=train)
    finite = np.isfinite(scores)
    assert not train.contains(
        np.broadcast_to(users[:, None], items.shape)[finite], items[finite]
    ).any()
    # every user still gets each of its unseen items, best first
    assert (finite.sum(1) == train.n_items - train.user_degrees()).all()
    ordered = np.where(finite, scores, -np.finfo(np.float32).max)
    assert (np.diff(ordered, axis=1) <= 0).all()


@pytest.mark.parametrize("name", MODELS)
def test_a_trained_model_beats_a_random_one(name: str, board, trained) -> None:  # noqa: ANN001
    train, held = board

    def auc(model) -> float:  # noqa: ANN001 - held-out item vs every out-of-group item
        with torch.no_grad():
            s = model.score_all(torch.arange(train.n_users)).numpy()
        half_u, half_i = train.n_users // 2, train.n_items // 2
        group = np.arange(train.n_users) < half_u
        other = np.where(
            group[:, None], np.arange(train.n_items) >= half_i, np.arange(train.n_items) < half_i
        )
        target = s[np.arange(train.n_users), held][:, None]
        return float(((target > s) & other).sum() / other.sum())

    assert auc(trained[name]) > 0.95 > auc(make(name, train, seed=1)) - 0.3
