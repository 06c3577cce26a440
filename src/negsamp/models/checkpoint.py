"""Training checkpoints: everything a gradient run needs to continue bit-for-bit.

A checkpoint holds the model and optimizer state, the grad scaler, the state of every
generator the run draws from (shuffle, batch-side negatives, dropout; the run never
touches torch's global generators, see :mod:`negsamp.rng`), the trainer's progress
(epochs done, history, early-stopping state with the best weights) and a fingerprint of
the configuration, so a checkpoint of another configuration is never continued. It is
written atomically: a crash mid-write leaves the previous one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from negsamp.io import atomic_path

log = logging.getLogger(__name__)

# train keys that may change between a run and its continuation
RESUMABLE = {"epochs", "resume", "checkpoint", "patience"}


def fingerprint(model_cfg: Any, train_cfg: Any, seed: int, sampler: Any, pool_shape: Any) -> str:
    """What must match for a checkpoint to continue a run (``train.epochs`` may grow)."""
    s = sampler.model_dump(mode="json") if hasattr(sampler, "model_dump") else None
    parts = [
        model_cfg.model_dump(mode="json"),
        train_cfg.model_dump(mode="json", exclude=RESUMABLE),
        seed,
        s,
        list(pool_shape),
    ]
    return json.dumps(parts, sort_keys=True)


def save(
    path: Path,
    fp: str,
    progress: dict[str, Any],
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    scaler: Any,
    generators: dict[str, torch.Generator],
) -> None:
    rng = {name: g.get_state() for name, g in generators.items()}
    blob = {
        "fingerprint": fp,
        "progress": progress,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def restore(
    path: Path,
    fp: str,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    scaler: Any,
    generators: dict[str, torch.Generator],
) -> dict[str, Any] | None:
    """Load ``path`` into the model, optimizer, scaler and generators; returns the saved
    progress, or None (nothing restored) when there is no checkpoint or it is another run's."""
    if not path.is_file():
        log.info("train.resume: no checkpoint at %s, starting from epoch 0", path)
        return None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("fingerprint") != fp:
        log.warning("checkpoint %s is from another configuration: ignored, starting afresh", path)
        return None
    missing = sorted(set(generators) - set(blob["rng"]))
    if missing:  # written before the run owned these generators: it cannot continue bit-for-bit
        log.warning(
            "checkpoint %s has no state for generators %s (an older negsamp wrote it): "
            "ignored, starting afresh",
            path,
            missing,
        )
        return None
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    scaler.load_state_dict(blob["scaler"])
    for name, g in generators.items():
        g.set_state(blob["rng"][name])
    progress = blob["progress"]
    if progress.get("best_state") is not None:
        dev = next(model.parameters()).device
        progress["best_state"] = {k: v.to(dev) for k, v in progress["best_state"].items()}
    log.info("resumed from %s after epoch %d", path, progress["epoch"] - 1)
    return progress
