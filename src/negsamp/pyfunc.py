"""Moved to :mod:`negsamp.mlops.pyfunc` (issue #12).

Models logged before the move pickled their class as ``negsamp.pyfunc.TopKRecommender``;
loading one resolves the name through this module, lazily, so importing it stays free of
MLflow.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "TopKRecommender":
        from negsamp.mlops.pyfunc import TopKRecommender

        return TopKRecommender
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (see negsamp.mlops)")
