"""The text of a flow run's Prefect artifacts (issue #15)."""

from __future__ import annotations

import math

from negsamp.summary import drift_markdown, markdown, table

COMPARISON = {
    "monitor": "sampled_ndcg_10",
    "columns": ["sampled_hr_10", "full_recall_10"],
    "level": 0.95,
    "rows": [
        {"rank": 1, "config": "pop", "sampler": "popularity", "model": "bpr", "n_neg": 4,
         "best": True, "valid": 0.35, "epochs": 7, "train_seconds": 1.5,
         "values": {"sampled_hr_10": 0.33, "full_recall_10": 0.17},
         "ci": {"sampled_hr_10": [0.28, 0.39], "full_recall_10": [0.12, 0.21]}},
        {"rank": 2, "config": "uni", "sampler": "uniform", "model": "bpr", "n_neg": 4,
         "best": False, "valid": 0.30, "epochs": 5, "train_seconds": 1.2,
         "values": {"sampled_hr_10": 0.30, "full_recall_10": float("nan")}, "ci": {}},
    ],
}  # fmt: skip
REGISTRATION = {
    "model_name": "negsamp", "version": 3, "config": "pop", "alias": "challenger",
    "promoted": False, "registered": True, "metric": "sampled_ndcg_10", "value": 0.19,
    "champion_value_before": 0.2, "champion_version_before": 2, "run_id": "abc",
    "reason": "vs champion v2: 0.19 does not beat 0.2",
}  # fmt: skip


def test_the_report_says_the_decision_links_and_every_configuration() -> None:
    links = {"run": "http://m/#/experiments/1/runs/abc", "model_version": "http://m/#/models/negsamp/versions/3",
             "open": None}  # fmt: skip
    text = markdown(
        {"registration": REGISTRATION, "comparison": COMPARISON}, links, "negsamp-sweep"
    )
    assert "**negsamp v3** (pop): kept as **challenger**." in text
    assert "Gate: vs champion v2: 0.19 does not beat 0.2" in text
    assert "- sampled_ndcg_10: 0.1900 (champion before: 0.2000, v2)" in text
    assert "[abc](http://m/#/experiments/1/runs/abc)" in text
    assert "| 1 | pop (chosen) | popularity | bpr | 4 | 0.3500 | 0.3300 [0.2800, 0.3900] |" in text
    assert "| 2 | uni | uniform | bpr | 4 | 0.3000 | 0.3000 | - |" in text  # NaN: a dash


def test_a_local_store_names_the_command_that_opens_the_ui() -> None:
    links = {
        "run": None,
        "model_version": None,
        "open": "mlflow ui --backend-store-uri sqlite:///x",
    }
    reg = REGISTRATION | {"promoted": True, "alias": "champion"}
    text = markdown({"registration": reg, "comparison": COMPARISON}, links, "t")
    assert (
        "promoted to **champion**" in text and "`mlflow ui --backend-store-uri sqlite:///x`" in text
    )


def test_the_table_has_a_row_per_configuration_with_ci_bounds_and_no_nan() -> None:
    rows = table(COMPARISON)
    assert [r["configuration"] for r in rows] == ["pop", "uni"]
    assert rows[0]["sampled_hr_10 ci_low"] == 0.28 and rows[1]["full_recall_10"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for r in rows for v in r.values())


def test_the_drift_report_lists_every_signal_and_marks_those_that_fired() -> None:
    out = {"retrained": True, "reason": "signals fired: ['item_js']",
           "drift": {"summary": "fired: item_js", "fired": ["item_js"],
                     "values": {"item_js": 0.31, "new_user_share": 0.01}, "report": "data/drift/r.json"},
           "registration": REGISTRATION}  # fmt: skip
    text = drift_markdown(out)
    assert "**fired: item_js**: retrained (signals fired: ['item_js'])." in text
    assert "| item_js | 0.31 | yes |" in text and "| new_user_share | 0.01 |  |" in text
    assert "Gate: negsamp v3 is challenger" in text
