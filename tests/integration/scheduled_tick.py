"""Serve a tiny flow on a one-minute cron, through the same connection as `make serve`.

Run as a script by test_schedules.py (argument: the cron's timezone). A schedule is fired
by the server's scheduler whatever the flow does, so the scheduling check uses a flow that
ends in a second; the real deployments are checked by a manual run in the same test.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows.deployments import connect


@flow(name="negsamp-tick")
def tick() -> str:
    return "tick"


if __name__ == "__main__":
    connect()  # the server in PREFECT_API_URL, never an ephemeral one
    from prefect.schedules import Cron

    tick.serve(name="every-minute", schedule=Cron("* * * * *", timezone=sys.argv[1]))
