"""negsamp: an MLOps workflow for implicit-feedback recommenders built around negative sampling.

The Python API (:mod:`negsamp.api`), imported on first use so ``import negsamp`` (and the
CLI) stays fast: :class:`Interactions`, :func:`split`, :func:`sample_negatives`,
:func:`fit`, :func:`evaluate`, and :class:`Model` with ``recommend(users, k)``.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# torch's OpenMP workers spin while they wait for the next parallel region; where other
# processes hold the cores, that spinning slowed 2-thread BPR training from 1.3-1.7M to
# 0.01-0.02M pairs/s and an iALS iteration from 0.02-0.08 s to 2.4-2.8 s (issue #17, a
# 2-core machine at load 13). Passive waiting is read once, when torch loads its OpenMP
# runtime, so it is set here, before any negsamp module imports torch; an
# OMP_WAIT_POLICY already in the environment wins (ACTIVE restores spinning).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_API = ("Interactions", "Model", "Split", "evaluate", "fit", "sample_negatives", "split")

if TYPE_CHECKING:
    from negsamp.api import (  # noqa: F401
        Interactions,
        Model,
        Split,
        fit,
        sample_negatives,
    )

# ``negsamp.split`` and ``negsamp.evaluate`` are also modules (the pure logic the stages
# run): importing them binds the module to the package's attribute, so each module is made
# callable instead, calling the API function of its name (see :func:`callable_module`).
_MODULES = ("evaluate", "split")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """The API's names, imported from :mod:`negsamp.api` when first asked for."""
    # by name, at call time: no stage reaches the API through the package root
    if name in _MODULES:
        return importlib.import_module(f"negsamp.{name}")
    if name in _API:
        return getattr(importlib.import_module("negsamp.api"), name)
    raise AttributeError(f"module 'negsamp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


class _CallableModule(types.ModuleType):
    """A module that, called, runs the API function of its name (``negsamp.split(data)``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = importlib.import_module("negsamp.api")
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def callable_module(name: str) -> None:
    """Make module ``name`` (negsamp.split, negsamp.evaluate) callable as its API function."""
    sys.modules[name].__class__ = _CallableModule
