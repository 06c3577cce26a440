"""iALS: each half-step is the exact minimiser of the weighted loss (closed form)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from negsamp.interactions import Interactions
from negsamp.models import als
from tests.unit.models.helpers import make


@pytest.fixture
def data() -> Interactions:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 15, 60), rng.integers(0, 12, 60)
    return Interactions.from_arrays(users, items, 15, 12, counts=rng.integers(1, 4, 60))


def dense_loss(x: torch.Tensor, y: torch.Tensor, train: Interactions, alpha: float, reg: float):  # noqa: ANN201
    """sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2), every cell, float64."""
    p = torch.zeros(train.n_users, train.n_items, dtype=torch.float64)
    c = torch.ones_like(p)
    rows, cols = train.rows(), train.indices
    p[rows, cols] = 1.0
    c[rows, cols] = 1.0 + alpha * torch.as_tensor(train.counts, dtype=torch.float64)
    return (c * (p - x @ y.T) ** 2).sum() + reg * (x.pow(2).sum() + y.pow(2).sum())


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
@pytest.mark.parametrize("side", ["user", "item"])
def test_a_half_step_zeroes_the_gradient_of_its_side(
    data: Interactions, solver: str, side: str
) -> None:
    model = make("ials", data, alpha=2.0, reg=0.5, solver=solver, cg_steps=4, factors=4)
    model.prepare(data, torch.device("cpu"))
    model.half_step(side)
    x = model.user.detach().double().requires_grad_(side == "user")
    y = model.item.detach().double().requires_grad_(side == "item")
    dense_loss(x, y, data, 2.0, 0.5).backward()
    grad = (x if side == "user" else y).grad
    # float32 solve: the gradient is ~0 next to the size of the loss's terms
    assert grad.abs().max().item() < 1e-3


def test_weighted_loss_matches_the_dense_objective(data: Interactions) -> None:
    model = make("ials", data, alpha=2.0, reg=0.5, factors=4)
    model.prepare(data, torch.device("cpu"))
    got = model.step() * data.nnz
    want = dense_loss(model.user.double(), model.item.double(), data, 2.0, 0.5).item()
    assert got == pytest.approx(want, rel=1e-4)


def test_loss_decreases_over_iterations(data: Interactions) -> None:
    model = make("ials", data, alpha=2.0, reg=0.5, factors=4, solver="cholesky")
    model.prepare(data, torch.device("cpu"))
    losses = [model.step() for _ in range(5)]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False))


def test_sides_hold_both_orientations(data: Interactions) -> None:
    users, items = als.sides(data, 3.0, torch.device("cpu"))
    dense_u = users.target.to_dense()
    assert torch.equal(dense_u.T, items.target.to_dense())
    assert torch.allclose(users.weight.to_dense(), (dense_u - 1).clamp_min(0))


def test_step_before_prepare_is_a_clear_error(data: Interactions) -> None:
    with pytest.raises(RuntimeError, match="prepare"):
        make("ials", data).half_step("user")
