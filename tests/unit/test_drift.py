from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from negsamp import drift
from negsamp.config import DriftCfg
from negsamp.drift import (
    DriftReport,
    compare_windows,
    evaluate_signals,
    expected_negative_band_hist,
    js_divergence,
    negative_distribution_drift,
    performance_decay,
    psi,
)

# --- PSI ---------------------------------------------------------------------------------


def test_psi_hand_computed() -> None:
    # shares 0.5/0.5 -> 0.8/0.2: 0.3 ln(0.8/0.5) + (-0.3) ln(0.2/0.5)
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(expected, rel=1e-5)
    assert psi(np.array([50, 50]), np.array([80, 20]), eps=0.0) == pytest.approx(
        0.4158883, abs=1e-7
    )


def test_psi_identical_is_zero_and_scale_free() -> None:
    assert psi(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(0.0, abs=1e-12)


def test_psi_empty_bins_use_eps_smoothing() -> None:
    eps = 1e-6
    # bin 0 empty in actual, bin 2 empty in expected; smoothed shares (s + eps) / (1 + 3 eps)
    hi, lo = (0.5 + eps) / (1 + 3 * eps), eps / (1 + 3 * eps)
    by_hand = 2 * (hi - lo) * math.log(hi / lo)  # ~ ln(500001) ~ 13.12
    value = psi(np.array([1, 1, 0]), np.array([0, 1, 1]), eps=eps)
    assert value == pytest.approx(by_hand, rel=1e-9)
    assert value == pytest.approx(13.1222, abs=1e-3)
    # a bin empty on both sides adds exactly nothing
    assert psi(np.array([1, 1, 0]), np.array([1, 1, 0])) == pytest.approx(0.0, abs=1e-12)


def test_psi_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="length"):
        psi(np.array([1, 1]), np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="positive sum"):
        psi(np.array([0, 0]), np.array([1, 1]))


# --- JS ----------------------------------------------------------------------------------


def test_js_hand_computed() -> None:
    # p = [1, 0], q = [.5, .5], m = [.75, .25]
    by_hand = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2))
    assert js_divergence(np.array([1, 0]), np.array([1, 1])) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.3112781)


def test_js_bounds() -> None:
    assert js_divergence(np.array([1, 2, 0]), np.array([2, 4, 0])) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence(np.array([1, 1, 0, 0]), np.array([0, 0, 3, 1])) == pytest.approx(1.0)
    assert js_divergence(np.array([1, 0]), np.array([0, 1]), base=math.e) == pytest.approx(
        math.log(2)
    )


def test_js_of_nearly_identical_distributions_is_a_small_non_negative_number() -> None:
    # scipy gives the JS *distance*; rounding can put the divergence a hair below 0,
    # where that square root is NaN: the divergence must come back >= 0, never NaN
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.random(50) ** 8
        d = js_divergence(p, p * (1 + 1e-13 * rng.random(50)))
        assert 0.0 <= d < 1e-12


def test_js_matches_the_kl_definition() -> None:
    p, q = np.array([3.0, 0, 1, 6, 2]), np.array([1.0, 4, 0, 2, 2])
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        s = x > 0
        return float((x[s] * np.log2(x[s] / m[s])).sum())

    assert js_divergence(p, q) == pytest.approx((kl(p) + kl(q)) / 2, abs=1e-12)


def test_item_distribution_counts_unseen_items_as_zero() -> None:
    p = drift.item_distribution(np.array([0, 0, 2]), 4)
    assert p.tolist() == pytest.approx([2 / 3, 0.0, 1 / 3, 0.0])


# --- compare_windows on hand-built frames ------------------------------------------------


def _frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    u, i, c = zip(*rows, strict=True)
    return pl.DataFrame(
        {"user": u, "item": i, "count": c, "timestamp": [0] * len(rows)},
        schema={"user": pl.Int32, "item": pl.Int32, "count": pl.Int32, "timestamp": pl.Int64},
    )


# ref: users 0-2, items 0-2 (counts 3, 2, 1); items 3, 4 and users 3, 4 are new
REF = _frame([(0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 2, 1), (2, 0, 1), (2, 1, 1)])
NEW = _frame([(0, 0, 1), (1, 1, 1), (3, 0, 1), (3, 3, 1), (4, 4, 1)])


def test_compare_windows_exact_shares() -> None:
    v = compare_windows(REF, NEW, n_items=5, popularity_bins=2, activity_bins=3)["values"]
    assert v["cold_item_share"] == pytest.approx(2 / 5)  # items 3, 4
    assert v["cold_items"] == 2
    assert v["new_user_share"] == pytest.approx(2 / 4)  # users 3, 4 of 0, 1, 3, 4
    assert v["new_user_interaction_share"] == pytest.approx(3 / 5)
    # JS over all 5 items: p = [1/2, 1/3, 1/6, 0, 0], q = [2/5, 1/5, 0, 1/5, 1/5]
    kl_p = 0.5 * math.log2(10 / 9) + math.log2(5 / 4) / 3 + math.log2(2) / 6
    kl_q = 0.4 * math.log2(8 / 9) + 0.2 * math.log2(3 / 4) + 0.4 * math.log2(2)
    assert v["item_js_raw"] == pytest.approx((kl_p + kl_q) / 2)
    floor = (5 - 1) * (1 / 6 + 1 / 5) / (8 * math.log(2))  # 5 items seen in either window
    assert v["item_js_noise_floor"] == pytest.approx(floor)
    assert v["item_js"] == pytest.approx(max(0.0, (kl_p + kl_q) / 2 - floor))


def test_compare_windows_popularity_psi_over_reference_mass_bins() -> None:
    # ref counts [3, 2, 1]: bin 0 = item 0 (first half of the mass), bin 1 = items 1, 2.
    # new, cold items left out: [2, 1 + 0] -> shares 2/3, 1/3 against 1/2, 1/2
    out = compare_windows(REF, NEW, n_items=5, popularity_bins=2)
    by_hand = (2 / 3 - 1 / 2) * math.log(4 / 3) + (1 / 3 - 1 / 2) * math.log(2 / 3)
    assert out["values"]["item_popularity_psi"] == pytest.approx(by_hand, rel=1e-5)
    assert out["distributions"]["item_popularity_bins"]["ref"] == pytest.approx([0.5, 0.5])


def test_compare_windows_activity_psi_thins_the_larger_window() -> None:
    # ref: 3 users x 2 events (6), new: events per user [1, 1, 2, 1] (5). Ref thinned to 5/6:
    # K ~ Bin(2, 5/6): P(1) = 10/36, P(2) = 25/36 -> shares 2/7, 5/7; new: 3/4, 1/4
    v = compare_windows(REF, NEW, n_items=5, activity_bins=3)["values"]
    by_hand = (3 / 4 - 2 / 7) * math.log((3 / 4) / (2 / 7)) + (1 / 4 - 5 / 7) * math.log(
        (1 / 4) / (5 / 7)
    )
    assert by_hand == pytest.approx(13 / 28 * math.log(7.5))
    assert v["user_activity_psi"] == pytest.approx(by_hand, rel=1e-5)


def test_compare_windows_identical_windows_show_no_drift() -> None:
    v = compare_windows(REF, REF, n_items=5)["values"]
    for name in ("item_popularity_psi", "item_js", "cold_item_share", "new_user_share"):
        assert v[name] == pytest.approx(0.0, abs=1e-9)
    assert v["user_activity_psi"] == pytest.approx(0.0, abs=1e-9)


def test_compare_windows_weights_by_count_or_rows() -> None:
    new = _frame([(0, 0, 1), (0, 3, 3)])
    assert compare_windows(REF, new, 5)["values"]["cold_item_share"] == pytest.approx(3 / 4)
    by_rows = compare_windows(REF, new, 5, weight="rows")["values"]
    assert by_rows["cold_item_share"] == pytest.approx(1 / 2)


def test_compare_windows_all_cold_leaves_popularity_psi_unmeasured() -> None:
    v = compare_windows(REF, _frame([(0, 3, 1)]), 5)["values"]
    assert math.isnan(v["item_popularity_psi"]) and v["cold_item_share"] == 1.0


def test_compare_windows_rejects_ids_beyond_the_catalog() -> None:
    with pytest.raises(ValueError, match="n_items=4"):
        compare_windows(REF, NEW, n_items=4)


# --- negative distribution and performance -----------------------------------------------


def test_band_definition_matches_the_pool_manifest() -> None:
    from negsamp.interactions import Interactions
    from negsamp.samplers.stats import pool_statistics

    rng = np.random.default_rng(0)
    items = rng.zipf(1.5, 3000) % 37
    train = Interactions.from_arrays(rng.integers(0, 500, 3000), items, 500, 37)
    deciles = pool_statistics(np.zeros((1, 1), np.int64), train)["popularity_deciles"]
    counts = train.item_counts()
    # alpha = 1 puts negatives where the catalog's interactions are; alpha = 0 where its items are
    assert expected_negative_band_hist(counts, 1.0).tolist() == pytest.approx(
        deciles["catalog_interactions"]
    )
    assert expected_negative_band_hist(counts, 0.0).tolist() == pytest.approx(
        deciles["catalog_items"]
    )


def test_negative_band_hist_by_hand() -> None:
    # 4 items, counts [4, 0, 1, 9], 2 bands: least popular half = items 1, 2.
    # alpha = .5: weights [2, 0, 1, 3] -> bands [0 + 1, 2 + 3] / 6
    counts = np.array([4, 0, 1, 9])
    hist = expected_negative_band_hist(counts, 0.5, n_bands=2)
    assert hist.tolist() == pytest.approx([1 / 6, 5 / 6])
    assert expected_negative_band_hist(counts, 0.0, n_bands=2).tolist() == pytest.approx([0.5, 0.5])


def test_negative_distribution_drift() -> None:
    assert negative_distribution_drift([0.5, 0.5], np.array([0.5, 0.5])) == 0.0
    assert negative_distribution_drift([1.0, 0.0], np.array([0.0, 1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_bands=2"):
        negative_distribution_drift([0.5, 0.5], np.ones(10) / 10)


def test_performance_decay_relative_drops() -> None:
    reg = {"sampled_hr_10": 0.5, "sampled_ndcg_10": 0.25, "full_recall_10": 0.0}
    now = {"sampled_hr_10": 0.4, "sampled_ndcg_10": 0.3, "full_recall_10": 0.1}
    out = performance_decay(reg, now)
    assert out == pytest.approx(
        {"sampled_hr_10_drop": 0.2, "sampled_ndcg_10_drop": -0.2, "performance_drop": 0.2}
    )
    assert performance_decay({}, now) == {}


# --- signals and report ------------------------------------------------------------------


def _by_name(signals: list[drift.Signal]) -> dict[str, drift.Signal]:
    return {s.name: s for s in signals}


def test_signals_fire_strictly_above_threshold() -> None:
    cfg = DriftCfg()
    at = {"item_popularity_psi": 0.2, "cold_item_share": 0.05, "performance_drop": 0.1}
    assert not any(s.fired for s in evaluate_signals(at, cfg))
    above = {"item_popularity_psi": 0.2001, "cold_item_share": 0.0501, "item_js": 0.05}
    fired = _by_name(evaluate_signals(above, cfg))
    assert fired["item_popularity_psi"].fired and fired["cold_item_share"].fired
    assert not fired["item_js"].fired
    assert [s.name for s in evaluate_signals({}, cfg)] == list(drift.SIGNALS)


def test_signals_null_threshold_nan_or_missing_value_never_fire() -> None:
    cfg = DriftCfg(item_js=None)
    s = _by_name(evaluate_signals({"item_js": 0.9, "item_popularity_psi": float("nan")}, cfg))
    assert not s["item_js"].fired and s["item_js"].threshold is None
    assert not s["item_popularity_psi"].fired and s["item_popularity_psi"].value is None
    assert not s["negative_js"].fired and s["negative_js"].value is None


def test_drift_cfg_rejects_unknown_keys_and_negative_thresholds() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        DriftCfg(item_psi=0.2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DriftCfg(item_js=-0.1)


def test_report_renders_and_writes(tmp_path: Path) -> None:
    window = compare_windows(REF, NEW, n_items=5)
    report = drift.make_report(
        window,
        DriftCfg(),
        negative_bands=([0.5, 0.5], np.array([0.4, 0.6])),
        performance=({"sampled_hr_10": 0.5}, {"sampled_hr_10": 0.5}),
    )
    assert isinstance(report, DriftReport)
    assert report.any_fired and "cold_item_share" in report.fired
    assert "performance_drop" not in report.fired and "negative_js" not in report.fired
    md = report.to_markdown()
    assert "| cold_item_share | 0.4000 | 0.05 | **yes** |" in md
    paths = drift.write_report(report, tmp_path / "drift")
    data = json.loads(paths["json"].read_text())
    assert data["fired"] == report.fired and data["any_fired"] is True
    assert data["values"]["performance_drop"] == 0.0
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 3
    for name in ("item_popularity", "user_activity", "negative_bands"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "drift").glob("*.tmp"))


def test_report_json_writes_nan_as_null() -> None:
    report = DriftReport(evaluate_signals({}, DriftCfg()), {"item_popularity_psi": float("nan")})
    data = json.loads(report.to_json())
    assert data["values"]["item_popularity_psi"] is None and data["any_fired"] is False
    assert "No drift signal fired." in report.to_markdown()


def test_the_drift_package_stays_pure() -> None:
    # issue #12: the stage owns files and MLflow; importing the logic pulls in neither
    # MLflow nor Prefect (nor scipy/matplotlib, imported only when a signal or plot needs them)
    code = (
        "import sys, negsamp.drift; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'mlflow', 'prefect', 'scipy', 'matplotlib'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
