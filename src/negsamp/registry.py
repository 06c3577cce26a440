"""Moved to :mod:`negsamp.mlops` (issue #12). What remains here imports no MLflow itself:

- ``TopKRecommender``: models logged before the move pickled it as
  ``negsamp.registry.TopKRecommender``; loading one resolves the name through this module
  (lazily, so importing this module stays free of MLflow).
- ``RegistrationError``: for code that still imports it from here.
"""

from __future__ import annotations

from typing import Any

from negsamp.mlops.errors import RegistrationError

__all__ = ["RegistrationError"]  # and, lazily, TopKRecommender


def __getattr__(name: str) -> Any:
    if name == "TopKRecommender":
        from negsamp.mlops.pyfunc import TopKRecommender

        return TopKRecommender
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (see negsamp.mlops)")
