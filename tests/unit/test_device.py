"""base.device resolution and CUDA-only mixed precision."""

from __future__ import annotations

import pytest
import torch

from negsamp.device import precision, resolve_device


def test_resolve_device() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_precision_is_fp32_off_cuda() -> None:
    for spec in ("auto", "fp32", "bf16", "fp16"):
        dtype, scaler = precision(spec, torch.device("cpu"))
        assert dtype is None and not scaler.is_enabled()
