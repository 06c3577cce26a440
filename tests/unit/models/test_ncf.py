"""NCF: NeuMF from pretrained GMF and MLP (the paper's blended output layer); seeded dropout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from negsamp.models import build_model, model_config, save_model
from tests.unit.models.helpers import SMALL, checkerboard, fit, make


@pytest.fixture(scope="module")
def parts():  # noqa: ANN201
    train, _ = checkerboard()
    return train, fit("gmf", train), fit("mlp", train)


def test_pretrained_neumf_scores_alpha_blend_of_its_parts(parts) -> None:  # noqa: ANN001
    train, gmf, mlp = parts
    neumf = make("neumf", train, alpha=0.3)
    neumf.init_from(gmf, mlp)
    users, items = torch.arange(train.n_users), torch.arange(train.n_items)
    with torch.no_grad():
        want = 0.3 * gmf.score_all(users) + 0.7 * mlp.score_all(users)
        assert torch.allclose(neumf.score_all(users), want, atol=1e-5)
        ui = items.expand(train.n_users, -1)
        assert torch.allclose(neumf.score(users, ui), want, atol=1e-5)


def test_build_model_loads_the_pretrained_folders(parts, tmp_path: Path) -> None:  # noqa: ANN001
    train, gmf, mlp = parts
    save_model(gmf, tmp_path / "gmf")
    save_model(mlp, tmp_path / "mlp")
    cfg = model_config(
        {
            "name": "neumf",
            **SMALL["neumf"],
            "pretrained_gmf": str(tmp_path / "gmf"),
            "pretrained_mlp": str(tmp_path / "mlp"),
        }
    )
    neumf = build_model(cfg, train.n_users, train.n_items, load_pretrained=True)
    assert torch.equal(neumf.gmf_item.weight, gmf.gmf_item.weight)
    assert torch.equal(neumf.first.weight, mlp.first.weight)
    fresh = build_model(cfg, train.n_users, train.n_items)  # load_model's path: no reading
    assert not torch.equal(fresh.gmf_item.weight, gmf.gmf_item.weight)


def test_mismatched_pretrained_parts_say_what_to_change(parts) -> None:  # noqa: ANN001
    train, gmf, mlp = parts
    with pytest.raises(ValueError, match="layers"):
        make("neumf", train, layers=[8]).init_from(gmf, mlp)
    with pytest.raises(ValueError, match="not 'mlp'"):
        make("neumf", train).init_from(gmf, gmf)


def test_neumf_config_needs_both_or_neither() -> None:
    with pytest.raises(ValueError, match="both"):
        model_config({"name": "neumf", "pretrained_gmf": "x"})


def test_seeded_dropout_draws_from_its_generator_like_torch_dropout() -> None:
    """Issue #12: masks come from the model's own generator (the DROPOUT stream), and on
    CPU they are torch's dropout masks for that seed, so the numbers did not move."""
    from negsamp.models.base import SeededDropout

    x = torch.arange(1.0, 201.0).reshape(8, 25)
    drop = SeededDropout(0.3)
    drop.generator = torch.Generator().manual_seed(5)
    got = drop(x)
    torch.manual_seed(5)
    assert torch.equal(got, torch.nn.functional.dropout(x, 0.3, training=True))
    drop.generator = torch.Generator().manual_seed(5)
    assert torch.equal(drop(x), got)  # the same generator state, the same mask
    kept = got != 0
    assert torch.allclose(got[kept], x[kept] / 0.7) and 0 < int(kept.sum()) < x.numel()
    assert torch.equal(drop.eval()(x), x) and torch.equal(SeededDropout(0.0)(x), x)
    with pytest.raises(ValueError, match="must lie in"):
        SeededDropout(1.0)


def test_set_dropout_generator_reaches_every_dropout_layer() -> None:
    train, _ = checkerboard()
    model = make("neumf", train, dropout=0.5)
    g = torch.Generator()
    model.set_dropout_generator(g)
    layers = [m for m in model.modules() if type(m).__name__ == "SeededDropout"]
    assert len(layers) == len(SMALL["neumf"]["layers"]) and all(m.generator is g for m in layers)
    model.set_dropout_generator(None)
    assert all(m.generator is None for m in layers)
