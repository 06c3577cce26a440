"""negsamp: an MLOps workflow for implicit-feedback recommenders built around negative sampling."""

__version__ = "0.1.0"
