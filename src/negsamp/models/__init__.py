"""Models: an explicit registry of plug-ins keyed by ``name``.

Every model shares one small interface: ``score(users, items)``,
``score_all(users)``, ``recommend(users, k, exclude)``, ``loss(...)`` for the
shared trainer, and ``save(dir)`` / ``load(dir)`` (config JSON + weights).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from negsamp.io import atomic_path, write_json

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
    cfg: Any, n_users: int, n_items: int, generator: torch.Generator | None = None
) -> Any:
    try:
        cls = _REGISTRY[cfg.name]
    except KeyError:
        raise ValueError(f"unknown model {cfg.name!r}; known models: {registered()}") from None
    return cls(cfg, n_users, n_items, generator=generator)


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
    with atomic_path(d / WEIGHTS_FILE) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)


def load_model(directory: str | Path, device: str = "cpu") -> Any:
    """Rebuild a saved model from its directory on ``device``."""
    from negsamp.config import BPRCfg

    d = Path(directory)
    meta = json.loads((d / CONFIG_FILE).read_text())
    cfg_types = {"bpr": BPRCfg}
    cfg = cfg_types[meta["name"]].model_validate(meta["config"])
    model = build_model(cfg, meta["n_users"], meta["n_items"])
    model.load_state_dict(torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    return model.to(device).eval()


from negsamp.models import bpr  # noqa: E402, F401
