"""Data layer: raw loaders, the synthetic log generator and dense id encoding."""

from negsamp.data.errors import DataError

__all__ = ["DataError"]
