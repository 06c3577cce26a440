"""Deterministic errors in the flows: never retried, and reported once, without a traceback.

A deterministic error (bad data, a bad setting, an impossible sampling request: the
``ValueError`` family negsamp raises for what a user must fix, and a stage's missing
input) fails the same way on every attempt, so a retry only doubles the wait; and the CLI
already prints its message as ``error: ...``, so Prefect's task and flow loggers repeating
it with two tracebacks is noise. Anything else (a crash in torch, a network error) keeps
its retry and its traceback. ``--verbose`` (debug logging) keeps every record.
"""

from __future__ import annotations

import logging
from typing import Any

from negsamp.stages.common import MissingInput

DETERMINISTIC: tuple[type[BaseException], ...] = (ValueError, MissingInput)
_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def is_deterministic(exc: BaseException | None) -> bool:
    return isinstance(exc, DETERMINISTIC)


def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry unless the task failed deterministically."""
    exc = getattr(state, "data", None)
    return not is_deterministic(exc if isinstance(exc, BaseException) else None)


class _Quiet(logging.Filter):
    """Drops the Prefect records that restate a deterministic error already raised."""

    def __init__(self) -> None:
        super().__init__("negsamp-deterministic")
        self.keys: set[str] = set()

    def remember(self, exc: BaseException) -> None:
        self.keys.add(_key(exc))

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger("negsamp").isEnabledFor(logging.DEBUG):
            return True  # --verbose: keep Prefect's tracebacks
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            if not is_deterministic(exc):
                return True
            self.remember(exc)
            return False
        if not self.keys:
            return True
        text = record.getMessage()
        if "NotReady" in text and "Upstream task run" in text:
            return False  # the stages after the failed one, which never ran
        return not any(k in text for k in self.keys)


def _key(exc: BaseException) -> str:
    """A prefix of the message that survives Prefect's repr of it in a state message."""
    first = (str(exc).strip().splitlines() or [""])[0]
    for ch in "'\"\\":
        first = first.split(ch, 1)[0]
    return first[:80] if len(first) >= 12 else f"{type(exc).__name__}: {first}"


QUIET = _Quiet()


def install() -> None:
    """Attach the filter to Prefect's run loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if QUIET not in logger.filters:
            logger.addFilter(QUIET)


def remember(exc: BaseException) -> None:
    """Mark ``exc`` as reported: Prefect's later records of it are dropped."""
    if is_deterministic(exc):
        QUIET.remember(exc)
