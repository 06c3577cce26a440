"""Where tensors live: ``base.device`` resolved to a torch device, and CUDA-only precision."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"base.device={spec!r} but CUDA is not available; use auto or cpu")
    return torch.device(spec)


def precision(spec: str, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """(autocast dtype or None, grad scaler) for ``train.precision``: mixed precision only
    on CUDA (bf16 where supported, else fp16 with loss scaling); fp32 elsewhere."""
    if device.type != "cuda" or spec == "fp32":
        if spec in ("bf16", "fp16"):
            log.info(
                "train.precision=%s applies on CUDA only; training in fp32 on %s", spec, device
            )
        return None, torch.amp.GradScaler("cpu", enabled=False)
    if spec in ("auto", "bf16") and torch.cuda.is_bf16_supported():
        return torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False)
    return torch.float16, torch.amp.GradScaler("cuda")
