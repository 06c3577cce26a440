"""The errors the MLflow boundary raises, and which MLflow failures are worth a retry.

Retries are MLflow's own: every REST call to a tracking server is retried on connection
errors, timeouts and 408/429/5xx answers, with exponential backoff, as set by
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (default 7), ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``
(default 2 s) and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (default 120 s per request). When they
are spent, MLflow raises an ``MlflowException`` whose cause chain holds the network error:
:func:`is_transient` recognises it, and the gate turns it into :class:`TrackingUnavailable`.
Deterministic errors (a refused request, a bad name) are never retried.
"""

from __future__ import annotations

import os

_RETRY_ENV = {  # MLflow's defaults, for the message (reading them here avoids importing MLflow)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}


class RegistrationError(ValueError):
    """The inputs of the register stage are missing or invalid; nothing was logged."""


class TrackingUnavailable(RuntimeError):
    """The tracking server did not answer within MLflow's retries."""


def _transient_types() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3

    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.RetryError,  # 408/429/5xx answers until the retries ran out
        urllib3.exceptions.MaxRetryError,
        urllib3.exceptions.NewConnectionError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.TimeoutError,
        ConnectionError,  # refused, reset, aborted
        TimeoutError,
    )


def _chain(err: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and all(e is not s for s in out):
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def is_transient(err: BaseException) -> bool:
    """True when ``err`` (or what caused it) is a network failure or a 5xx/429 answer.

    An SSL certificate failure is a network error that no retry fixes: not transient.
    """
    import requests

    chain = _chain(err)
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return False
    return any(isinstance(e, _transient_types()) for e in chain)


def _cause(err: BaseException) -> str:
    """A few words on what failed: 'connection refused', 'timed out', 'server errors'."""
    import requests

    text = " ".join(str(e) for e in _chain(err)).lower()
    if "refused" in text:
        return "connection refused"
    if any(isinstance(e, requests.exceptions.RetryError) for e in _chain(err)):
        return "it kept answering with server errors"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    return next(type(e).__name__ for e in _chain(err) if isinstance(e, _transient_types()))


def unavailable(uri: str, err: BaseException, outcome: str) -> TrackingUnavailable:
    """The one-sentence error for a tracking server that stayed unreachable.

    ``outcome`` says what that left behind, e.g. "the model registry was not changed".
    """
    settings = ", ".join(f"{k}={os.environ.get(k, v)}" for k, v in _RETRY_ENV.items())
    return TrackingUnavailable(
        f"MLflow at {uri} did not answer ({_cause(err)}) within MLflow's retries "
        f"({settings}), so the registration failed and {outcome}."
    )


class StoreBroken(RuntimeError):
    """The sqlite tracking store was left half-migrated; the message says how to repair it."""
