"""Which configuration of a sweep goes to the champion gate: chosen on validation (issue #12).

Choosing among configurations by a test metric is model selection on test: the figure
reported for the winner is optimistic, and it is the wrong winner as often as the test
and validation orders differ. The choice is made here, once, for the report stage (which
ranks the comparison table) and the register stage (which takes the choice to the gate):
each configuration's value is ``valid_<train.monitor>`` (the metric early stopping
watches) at the epoch whose weights were kept, from its ``history.json``; the test split
only reports, and the gate makes its one comparison with the champion on it.

Pure logic: the stages read the histories and hand them over.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from negsamp.config import Config

log = logging.getLogger(__name__)


class SelectionError(ValueError):
    """The configurations of a sweep cannot be compared on validation."""


@dataclass(frozen=True)
class Candidate:
    """One configuration as the choice sees it (its resolved ``train`` section and history)."""

    name: str
    monitor: str  # train.monitor, e.g. sampled_ndcg_10: history holds valid_<monitor>
    restore_best: bool  # train.restore_best: the kept weights are the best epoch's
    history: Sequence[Mapping[str, Any]]  # history.json: one dict per epoch


@dataclass(frozen=True)
class Selection:
    """The choice, and every configuration's validation value (None: it cannot be chosen)."""

    chosen: str
    monitor: str
    on: str  # "valid": chosen on the validation split; "single": one configuration, no choice
    values: dict[str, float | None]
    order: tuple[str, ...]  # the chosen first, then by validation value, None last (by name)

    @property
    def key(self) -> str:
        """The history key the values come from (``valid_sampled_ndcg_10``)."""
        return f"valid_{self.monitor}"

    @property
    def unchosen(self) -> tuple[str, ...]:
        """Configurations with no finite validation value, which could not be chosen."""
        return tuple(n for n in self.order if self.values[n] is None)

    def describe(self) -> str:
        """One line for reports and logs: which split chose, and on what."""
        return describe(self.on, self.monitor)


def describe(on: str, metric: str) -> str:
    """Which split chose, on ``metric``: ``on`` is :attr:`Selection.on` (or ``"test"``, what
    a comparison written before issue #12 did)."""
    if on == "single":
        return "one configuration: nothing to choose; test metrics report only"
    if on == "test":
        return f"chosen on test: {metric} (test), a report written before validation chose"
    return f"chosen on validation: {metric} (valid); test metrics report only"


def kept_value(
    history: Sequence[Mapping[str, Any]], monitor: str, restore_best: bool
) -> float | None:
    """``valid_<monitor>`` at the epoch whose weights training kept; None if not finite.

    Mirrors ``negsamp.train._Progress``: with ``restore_best`` the kept epoch is the first
    with the highest finite value (a NaN epoch is never the best; with none finite the last
    epoch's weights stay), otherwise the last epoch. An empty history has no value.
    """
    key = f"valid_{monitor}"
    finite = [float(h[key]) for h in history if _finite(h.get(key))]
    if restore_best and finite:
        return max(finite)
    last = history[-1].get(key) if history else None
    return float(last) if _finite(last) else None


def kept_epochs(history: Sequence[Mapping[str, Any]], monitor: str, restore_best: bool) -> int:
    """How many epochs (iterations for ``ials``) produced the weights training kept.

    The epoch :func:`kept_value` reads, counted from 1: with ``restore_best`` the first
    epoch with the highest finite ``valid_<monitor>``, otherwise (or with none finite) the
    last. The refit (issue #13) trains this many epochs on every interaction. An empty
    history has none: ValueError.
    """
    if not history:
        raise ValueError("an empty training history kept no epoch")
    key = f"valid_{monitor}"
    values = [float(h[key]) if _finite(h.get(key)) else -math.inf for h in history]
    if restore_best and max(values) > -math.inf:
        return values.index(max(values)) + 1
    return len(history)


def choose(candidates: Sequence[Candidate], validation: bool) -> Selection:
    """The configuration with the highest validation value (ties: the first name in sort order).

    ``validation`` is ``split.validation``. One configuration is chosen as it is, whatever
    its history holds. Several need a validation split and one ``train.monitor`` (the
    validation metrics are all higher-is-better, as early stopping assumes); a
    configuration whose kept value is missing or NaN cannot be chosen, and when none can
    be, nothing is. Raises :class:`SelectionError` saying what to change.
    """
    if not candidates:
        raise SelectionError("nothing to choose from: sweep.configs is empty")
    values = {c.name: kept_value(c.history, c.monitor, c.restore_best) for c in candidates}
    if len(candidates) == 1:
        (only,) = candidates
        return Selection(only.name, only.monitor, "single", values, (only.name,))
    names = sorted(values)
    if not validation:
        raise SelectionError(
            f"a sweep of {len(names)} configurations ({', '.join(names)}) is chosen on the "
            "validation split, and split.validation is false: set split.validation: true "
            "(the test split only reports)"
        )
    monitors: dict[str, list[str]] = {}
    for c in candidates:
        monitors.setdefault(c.monitor, []).append(c.name)
    if len(monitors) > 1:
        which = "; ".join(f"{m}: {', '.join(sorted(n))}" for m, n in sorted(monitors.items()))
        raise SelectionError(
            f"the configurations watch different validation metrics (train.monitor {which}) "
            "and cannot be compared: set one train.monitor for the whole sweep (drop "
            "train.monitor from the sweep.configs entries)"
        )
    monitor = candidates[0].monitor
    scores = {n: v for n, v in values.items() if v is not None}
    if not scores:
        raise SelectionError(
            f"no configuration can be chosen: none of {', '.join(names)} has a finite "
            f"valid_{monitor} in its history.json (re-run train with split.validation: true)"
        )
    ranked = sorted(scores, key=lambda n: (-scores[n], n))
    unchosen = [n for n in names if n not in scores]
    if unchosen:
        log.warning(
            "%s cannot be chosen: no finite valid_%s at the kept epoch of its history.json",
            ", ".join(unchosen),
            monitor,
        )
    return Selection(ranked[0], monitor, "valid", values, (*ranked, *unchosen))


def choose_for(cfg: Config, histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> Selection:
    """:func:`choose` among ``cfg``'s configurations, each with its own resolved ``train``
    section and the history.json in ``histories`` (keyed by configuration name)."""
    candidates = []
    for name in cfg.variants:
        t = cfg.variant(name).train
        candidates.append(Candidate(name, t.monitor, t.restore_best, histories[name]))
    return choose(candidates, cfg.split.validation)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
