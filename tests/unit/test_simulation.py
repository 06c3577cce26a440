"""The simulation's script: what each day brings, built deterministically (issue #13, point 6)."""

from __future__ import annotations

import pytest

from negsamp.config import SyntheticCfg
from negsamp.simulation import BROKEN_SHARE, batches, markdown, plan, summary

BASE = SyntheticCfg(n_users=300, n_items=150, n_interactions=6000)


def test_thirty_days_are_quiet_then_a_slow_shift_with_a_broken_day_then_a_new_catalog() -> None:
    days = plan(30)
    kinds = [d.kind for d in days]
    assert [d.day for d in days] == list(range(1, 31))
    assert kinds[:8] == ["quiet"] * 8 and kinds[21:] == ["catalog"] * 9
    assert kinds[8:21].count("broken") == 1 and kinds[14] == "broken"
    shift = [d.drift for d in days[8:21]]
    assert shift == sorted(shift) and shift[0] == 0.05 and shift[-1] == 0.6  # slow, rising
    assert all(d.drift == 0 for d in days[:8]) and all(d.drift == 1 for d in days[21:])


@pytest.mark.parametrize("n", [4, 5, 9, 60])
def test_every_length_has_each_kind_of_day(n: int) -> None:
    kinds = [d.kind for d in plan(n)]
    assert len(kinds) == n and set(kinds) == {"quiet", "shift", "broken", "catalog"}


def test_fewer_than_four_days_are_refused() -> None:
    with pytest.raises(ValueError, match="--days must be at least 4"):
        plan(3)


def test_batches_continue_the_base_log_day_by_day_and_are_reproducible() -> None:
    days = plan(6)
    a, b = batches(days, BASE, 7, 300), batches(days, BASE, 7, 300)
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert [f.height for f in a] == [300] * 6
    for before, after in zip(
        a[:-1], a[1:], strict=True
    ):  # one day after another, never overlapping
        assert before["timestamp"].max() < after["timestamp"].min()
    new_items = [int((f["item"] > BASE.n_items).sum()) for f in a]
    for d, n in zip(days, new_items, strict=True):
        assert (n > 0) == (d.kind == "catalog"), (d, n)
    [broken] = [f for d, f in zip(days, a, strict=True) if d.kind == "broken"]
    assert broken["item"].null_count() == round(BROKEN_SHARE * 300)
    assert broken["user"].null_count() == 0


def test_the_report_counts_and_tabulates_every_day() -> None:
    rows = [
        {"day": 1, "kind": "quiet", "drift": 0.0, "ingest": "ingested", "signals": [],
         "retrained": False, "promoted": False, "champion": "v1", "champion_metric": 0.41,
         "requests": 10, "errors": 0, "served_versions": ["v1"]},
        {"day": 2, "kind": "broken", "drift": 0.3, "ingest": "rejected: column 'item' | nulls",
         "signals": [], "retrained": False, "promoted": False, "champion": "v1",
         "champion_metric": 0.41, "requests": 12, "errors": 0, "served_versions": ["v1"]},
        {"day": 3, "kind": "catalog", "drift": 1.0, "ingest": "ingested",
         "signals": ["item_js"], "retrained": True, "promoted": True, "gate": "beats",
         "champion": "v2", "champion_metric": 0.19, "requests": 30, "errors": 1,
         "served_versions": ["v1", "v2"]},
    ]  # fmt: skip
    switches = [{"from": 1, "to": 2, "detected_at": 10.0, "swapped_at": 10.5, "requests": 9}]
    s = summary(rows, switches)
    assert s == {
        "days": 3, "batches_ingested": 2, "batches_rejected": 1, "retrains": 1, "promotions": 1,
        "requests": 52, "errors": 1, "alias_switches": 1, "requests_during_switches": 9,
        "errors_during_switches": 0,
    }  # fmt: skip
    text = markdown(
        {"summary": s, "days": rows, "switches": switches, "model_name": "m", "metric": "x",
         "rows_per_day": 5, "seed": 1, "deployment": "d/e", "prefect_api": "u", "k": 10,
         "request_every_s": 0.5, "switch_window_s": 5.0}
    )  # fmt: skip
    table = [line for line in text.splitlines() if line.startswith("| 2 | broken")]
    assert table and "rejected: column 'item' / nulls" in table[0]  # a pipe cannot break it
    assert "| v1 | v2 | 0.50 | 9 | 0 |" in text
