"""NeuMF from pretrained GMF and MLP: the blended output layer, as the paper initialises it."""

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
