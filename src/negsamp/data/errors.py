"""The one error type the data layer raises for problems a user can fix."""

from __future__ import annotations


class DataError(ValueError):
    """The input data is missing, empty or malformed.

    The message always says which file (or column, or row) is at fault and what to
    change (usually a key under ``data:`` in params.yaml).
    """
