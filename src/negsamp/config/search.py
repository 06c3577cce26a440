"""Search spaces for ``negsamp tune``: declared beside each plug-in's configuration.

A plug-in's settings class (``BPRSettings``, ``PopularitySettings``, ...) lists the keys
worth tuning and their ranges in ``SEARCH_SPACE``; :meth:`PluginSection.search_space`
collects them (through the class hierarchy) as override paths in params.yaml's layout, so
a sampled trial is applied like any ``--set`` and validated by the same config classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Trial(Protocol):
    """What a dimension needs from a search trial (an Optuna trial fits)."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...


@dataclass(frozen=True)
class Float:
    """A float in [low, high], sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Trial, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Int:
    """An int in [low, high], sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False

    def suggest(self, trial: Trial, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


Dim = Float | Int

# shared by the gradient models: learning rate and L2 penalty
GRADIENT = {"lr": Float(1e-4, 5e-2, log=True), "l2": Float(1e-6, 1e-1, log=True)}


def collect(cls: type) -> dict[str, Dim]:
    """``SEARCH_SPACE`` of ``cls`` merged over its bases (a subclass's entry wins)."""
    out: dict[str, Dim] = {}
    for klass in reversed(cls.__mro__):
        out |= klass.__dict__.get("SEARCH_SPACE", {})
    return out
