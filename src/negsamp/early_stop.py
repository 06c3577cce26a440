"""Early stopping shared by the trainers (:mod:`negsamp.train`, :mod:`negsamp.sequential`):
per-epoch history, the best monitored value and its weights, patience."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What survives a crash: completed epochs, history, early-stopping state."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped: bool = False

    @classmethod
    def start(cls, checkpoint: Any, cfg: Any, fp: str, *state: Any) -> Progress:
        """A fresh progress, or the checkpoint's when ``cfg.resume`` and it is this run's
        (fingerprint ``fp``); ``state``: model, optimizer, scaler, generators, restored too."""
        if checkpoint is not None and cfg.resume:
            from negsamp.models import checkpoint as ckpt

            saved = ckpt.restore(checkpoint, fp, *state)
            if saved is not None:
                return cls(**saved)
        return cls()

    def record(self, model: Any, row: dict[str, float], cfg: Any, valid: Any) -> None:
        """Append ``row``; track the best monitored value and stop after ``patience`` misses."""
        self.history.append(row)
        self.epoch += 1
        if valid is None:
            return
        value = row[f"valid_{valid.monitor}"]
        if value > self.best:
            self.best, self.bad_epochs = value, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
            self.stopped = cfg.patience > 0 and self.bad_epochs >= cfg.patience
            if self.stopped:
                log.info(
                    "early stop after epoch %d: best %s %.4f",
                    row["epoch"],
                    valid.monitor,
                    self.best,
                )

    def finish(self, model: Any, cfg: Any) -> list[dict[str, float]]:
        if cfg.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
        model.eval()
        return self.history


def validate(model: Any, valid: Any, device: torch.device) -> dict[str, float]:
    """``valid(model, device)`` in eval mode (the model back in train mode after); {} for None.
    valid: a :class:`negsamp.train.Validation` or None."""
    if valid is None:
        return {}
    model.eval()
    try:
        return valid(model, device)
    finally:
        model.train()
