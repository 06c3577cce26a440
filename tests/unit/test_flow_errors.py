"""flows.errors (#14 point 6): deterministic errors are not retried and Prefect does not restate
them with tracebacks; unexpected errors keep both."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from prefect.states import Failed

from flows import errors
from negsamp.data.errors import DataError
from negsamp.samplers.exact import SamplingError
from negsamp.stages.common import MissingInput


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (DataError("log.csv: line 3: rating 'nan' is not a finite number"), False),
        (SamplingError("sampler.n_neg=11 is more than the catalog's 10 items"), False),
        (MissingInput("data/interim/train.parquet not found"), False),
        (RuntimeError("CUDA error: an illegal memory access"), True),
        (OSError("connection reset"), True),
    ],
)
def test_only_non_deterministic_failures_are_retried(exc: Exception, retried: bool) -> None:
    state = Failed(data=exc, message=repr(exc))
    assert errors.retry_condition(None, None, state) is retried


def _record(name: str, msg: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except type(exc):
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, exc_info)


@pytest.fixture
def quiet() -> Iterator[errors._Quiet]:
    logger = logging.getLogger("negsamp")
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears isEnabledFor's cache
    yield errors._Quiet()
    logger.setLevel(level)


def test_prefect_restatements_of_a_deterministic_error_are_dropped(quiet: errors._Quiet) -> None:
    err = DataError("/p/log.csv: 1 row(s) could not be read as csv: line 8: rating 'nan' ...")
    quiet.remember(err)  # the task body saw it first
    failed = f"Finished in state Failed('Task run encountered an exception DataError: {err}')"
    assert not quiet.filter(_record("prefect.task_runs", failed))
    assert not quiet.filter(_record("prefect.flow_runs", "Encountered exception", err))
    upstream = (
        "Finished in state NotReady(\"Upstream task run 'x' did not reach a 'COMPLETED' state.\")"
    )
    assert not quiet.filter(_record("prefect.task_runs", upstream))
    assert quiet.filter(_record("prefect.task_runs", "Finished in state Completed()"))


def test_unexpected_errors_keep_their_traceback(quiet: errors._Quiet) -> None:
    quiet.remember(DataError("something else entirely went wrong"))
    record = _record("prefect.task_runs", "Task run failed", RuntimeError("torch exploded"))
    assert quiet.filter(record) and record.exc_info is not None
    assert quiet.filter(_record("prefect.flow_runs", "Finished in state Failed('RuntimeError')"))


def test_verbose_keeps_every_record(quiet: errors._Quiet) -> None:
    logging.getLogger("negsamp").setLevel(logging.DEBUG)  # what --verbose sets (on the root)
    assert quiet.filter(_record("prefect.flow_runs", "Encountered", DataError("x" * 20)))
