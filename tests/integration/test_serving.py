"""Serving the champion over HTTP with `mlflow models serve` on 127.0.0.1 (issue #8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from tests.integration.browser import free_port, wait_http
from tests.integration.conftest import run_stages

pytestmark = pytest.mark.slow


def test_served_champion_returns_k_unseen_items_with_original_ids(trained_project: Path) -> None:
    root = trained_project
    run_stages(root, "register")
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    negsamp = str(Path(sys.executable).with_name("negsamp"))
    proc = subprocess.Popen(
        [negsamp, "serve", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc)
        users = pl.read_parquet(root / "data/interim/user_ids.parquet")
        known = users["original"].head(3).to_list()
        body = {"dataframe_records": [{"user": u} for u in [*known, 10**9]], "params": {"k": 5}}
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        out = pl.DataFrame(
            json.loads(urllib.request.urlopen(req, timeout=60).read())["predictions"]
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    assert out.group_by("user").len()["len"].to_list() == [5] * 4
    items = pl.read_parquet(root / "data/interim/item_ids.parquet")
    assert set(out["item"].to_list()) <= set(items["original"].to_list())  # original ids
    train = pl.read_parquet(root / "data/split/train.parquet")
    seen = (
        train.join(users, on="user")
        .join(items, on="item", suffix="_item")
        .select(user="original", item="original_item")
    )
    assert out.join(seen, on=["user", "item"]).height == 0  # nothing already seen
    flags = dict(out.select("user", "known_user").unique().iter_rows())
    assert all(flags[u] for u in known) and flags[10**9] is False
