"""Models: an explicit registry of plug-ins keyed by ``name``.

Every model shares one small interface: ``score(users, items)``, ``score_all(users)``,
``score_cross(users, items)``, ``recommend(users, k, exclude)`` and ``save(dir)`` /
``load(dir)`` (config JSON + weights). Models trained by the shared gradient trainer
(:mod:`negsamp.train`) also give ``loss(...)`` and ``in_batch_loss(...)``; a model with
``trains_on_pool = False`` (``ials``) instead gives ``prepare(train, device)`` and
``step() -> loss``: one closed-form iteration, no negatives.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from negsamp.io import atomic_write, write_json

_REGISTRY: dict[str, Callable[..., Any]] = {}
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"


def register_model(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return deco


def registered() -> list[str]:
    return sorted(_REGISTRY)


def build_model(
    cfg: Any,
    n_users: int,
    n_items: int,
    generator: torch.Generator | None = None,
    load_pretrained: bool = False,
) -> Any:
    """A fresh model for ``cfg``; with ``load_pretrained`` a model that names pretrained
    parts (NeuMF's ``pretrained_gmf`` / ``pretrained_mlp``) is initialised from them."""
    try:
        cls = _REGISTRY[cfg.name]
    except KeyError:
        raise ValueError(f"unknown model {cfg.name!r}; known models: {registered()}") from None
    model = cls(cfg, n_users, n_items, generator=generator)
    dirs = model.pretrained_dirs() if load_pretrained and hasattr(model, "pretrained_dirs") else []
    if dirs:
        model.init_from(*(load_model(d) for d in dirs))
    return model


def model_config(raw: dict[str, Any]) -> Any:
    """The typed config of any registered model from its JSON form (``name`` picks the type)."""
    from pydantic import TypeAdapter

    from negsamp.config import ModelCfg

    return TypeAdapter(ModelCfg).validate_python(raw)


def save_model(model: Any, directory: str | Path) -> None:
    """Write model.json (name, sizes, config) and weights.pt, each atomically."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    write_json(
        d / CONFIG_FILE,
        {
            "name": model.cfg.name,
            "n_users": model.n_users,
            "n_items": model.n_items,
            "config": model.cfg.model_dump(mode="json"),
        },
    )
    # torch.save names the archive's records after the file it writes, and the atomic temp
    # file's name is random: save to memory (a fixed record name) so equal weights give
    # equal bytes, and DVC sees an unchanged model as unchanged
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write(d / WEIGHTS_FILE, buf.getvalue())


def load_model(directory: str | Path, device: str = "cpu") -> Any:
    """Rebuild a saved model from its directory on ``device`` (in eval mode)."""
    d = Path(directory)
    if not (d / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{d / CONFIG_FILE} not found: {d} is not a saved model folder")
    meta = json.loads((d / CONFIG_FILE).read_text())
    cfg = model_config({**meta["config"], "name": meta["name"]})
    model = build_model(cfg, meta["n_users"], meta["n_items"])
    model.load_state_dict(torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    return model.to(device).eval()


# Plug-ins register themselves on import; the list is explicit (no module scanning).
from negsamp.models import bpr, ials, lmf, ncf, sasrec  # noqa: E402, F401
