"""Calibration (ECE, the sampling correction) and the linear embedding probe."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from negsamp.metrics.calibration import calibration, reliability, reliability_png, sigmoid
from negsamp.metrics.probe import probe


def test_a_perfectly_calibrated_predictor_has_ece_near_zero() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(400_000)
    label = rng.random(p.size) < p
    out = reliability(p, label, bins=10)
    assert out["ece"] < 0.005
    assert [b["count"] for b in out["bins"]] == pytest.approx([40_000] * 10, rel=0.02)


def test_a_constant_predictor_has_its_known_ece() -> None:
    label = np.r_[np.ones(30), np.zeros(70)]  # base rate 0.3
    assert reliability(np.full(100, 0.8), label)["ece"] == pytest.approx(0.5)
    assert reliability(np.full(100, 0.3), label)["ece"] == pytest.approx(0.0)


def test_the_sampling_correction_shifts_by_the_log_ratio() -> None:
    # trained on 4 negatives per positive, evaluated with 99: a constant score whose
    # sigmoid is the training base rate 1/5 is calibrated after the shift, not before
    m, n_neg = 99, 4
    c = np.log(1 / n_neg)  # sigmoid(c) = 1 / (1 + n_neg)
    metrics, report = calibration(np.full(50, c), np.full((50, m), c), n_neg)
    assert sigmoid(c) == pytest.approx(0.2)
    assert metrics["ece"] == pytest.approx(0.2 - 0.01)
    assert metrics["ece_corrected"] == pytest.approx(0.0, abs=1e-12)
    assert report["base_rate"] == 0.01 and report["shift"] == pytest.approx(-np.log(99 / 4))
    assert reliability_png({"pointwise": True, **report}).startswith(b"\x89PNG")
    assert reliability_png({"pointwise": False, "why": "loss 'bpr'"}).startswith(b"\x89PNG")


def test_the_probe_reads_one_hot_genres_perfectly_and_beats_its_baselines() -> None:
    rng = np.random.default_rng(1)
    n, g = 400, 5
    genre = rng.integers(0, g, n)
    second = (genre + 1 + rng.integers(0, g - 1, n)) % g  # a second, different genre
    multi = rng.random(n) < 0.4
    era = rng.integers(0, 3, n)
    genres = np.eye(g)[genre] + multi[:, None] * np.eye(g)[second]
    emb = np.hstack([genres, np.eye(3)[era]])  # multi-hot genres, one-hot era
    items = np.arange(n)
    attrs = pl.DataFrame(
        {
            "item": np.r_[items, items[multi], items].astype(np.int32),
            "family": ["genre"] * (n + multi.sum()) + ["era"] * n,
            "value": [f"g{v}" for v in np.r_[genre, second[multi]]] + [f"e{v}" for v in era],
        }
    )
    counts = rng.integers(1, 50, n)
    metrics, report = probe(emb, attrs, counts, seed=0)
    assert metrics["probe_genre_f1"] > 0.99  # multi-valued: one probe per genre
    assert metrics["probe_era_f1"] > 0.99  # single-valued: multinomial
    assert metrics["probe_genre_f1_random"] < 0.7
    assert metrics["probe_era_f1_popularity"] < 0.5
    assert report["families"]["genre"]["multi_valued"] is True
    assert report["families"]["era"]["test_items"] == 120
