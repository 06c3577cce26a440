"""Which MLflow failures are transient, and the one sentence a user reads (issue #12)."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException

from negsamp.mlops.errors import TrackingUnavailable, is_transient, unavailable


def _wrapped(cause: BaseException) -> MlflowException:
    """As MLflow's REST client raises it once its own retries are spent."""
    try:
        raise cause
    except BaseException as err:  # noqa: BLE001
        try:
            raise MlflowException(f"API request to http://127.0.0.1:5000 failed with {err}")
        except MlflowException as out:
            return out


@pytest.mark.parametrize(
    ("err", "transient"),
    [
        (_wrapped(requests.exceptions.ConnectionError("Connection refused")), True),
        (_wrapped(requests.exceptions.ReadTimeout("read timed out")), True),
        (_wrapped(requests.exceptions.RetryError("too many 503 error responses")), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (_wrapped(requests.exceptions.SSLError("certificate verify failed")), False),
        (MlflowException("no access", error_code="PERMISSION_DENIED"), False),
        (MlflowException("Registered model alias champion not found."), False),
        (ValueError("bad input"), False),
    ],
)
def test_only_network_failures_are_transient(err: BaseException, transient: bool) -> None:
    assert is_transient(err) is transient


def test_the_error_is_one_sentence_naming_the_uri_the_settings_and_the_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    err = unavailable(
        "http://127.0.0.1:5000",
        _wrapped(requests.exceptions.ConnectionError("[Errno 111] Connection refused")),
        "the model registry was not changed",
    )
    assert isinstance(err, TrackingUnavailable) and isinstance(err, RuntimeError)
    assert str(err) == (
        "MLflow at http://127.0.0.1:5000 did not answer (connection refused) within MLflow's "
        "retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES=2, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=2, "
        "MLFLOW_HTTP_REQUEST_TIMEOUT=120), so the registration failed and the model registry "
        "was not changed."
    )
