"""The deployments (issue #7): drift-check on the configured cron, both one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_drift_check_is_scheduled_and_a_second_retrain_waits(
    prefect_harness: None, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import get_client
    from prefect.states import Pending

    from flows.deployments import build

    for deployment in build(str(project / "params.yaml")):
        deployment.apply()
    with get_client(sync_client=True) as client:
        check = client.read_deployment_by_name("negsamp-scheduled-drift-check/drift-check")
        assert [s.schedule.cron for s in check.schedules] == ["0 3 * * *"]
        assert check.global_concurrency_limit.limit == 1
        retrain = client.read_deployment_by_name("negsamp-retrain/retrain")
        assert retrain.global_concurrency_limit.limit == 1
        assert retrain.schedules == []  # on demand only

        first = client.create_flow_run_from_deployment(retrain.id)
        second = client.create_flow_run_from_deployment(retrain.id)
        assert client.set_flow_run_state(first.id, Pending()).status.value == "ACCEPT"
        waiting = client.set_flow_run_state(second.id, Pending())
        assert waiting.status.value == "REJECT"
        assert waiting.state.name == "AwaitingConcurrencySlot"
