"""#14 point 3: timestamps as they come (epoch s/ms/us by magnitude, ISO 8601 with or without a
zone, strftime), and what was detected is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from negsamp.config import ColumnsCfg, DataCfg
from negsamp.data import DataError
from negsamp.data.loaders import load_raw_info

COLUMNS = ColumnsCfg(user="u", item="i", rating=None, timestamp="t")
T0, T1 = 1704164645, 1704157445  # 2024-01-02T03:04:05Z and 2024-01-02T03:04:05+02:00


def _read(tmp_path: Path, times: list[str], fmt: str = "auto") -> tuple[list[int], str]:
    lines = "".join(f"{k},{k + 10},{t}\n" for k, t in enumerate(times))
    (tmp_path / "log.csv").write_text("u,i,t\n" + lines)
    cfg = DataCfg(source="csv", path=str(tmp_path / "log.csv"), columns=COLUMNS)
    df, info = load_raw_info(cfg.model_copy(update={"timestamp_format": fmt}))
    assert info["timestamp_format"] == fmt
    return df["timestamp"].to_list(), info["timestamp_parsed_as"]


@pytest.mark.parametrize(
    ("times", "unit"),
    [
        ([str(T0), str(T0 + 60)], "unix_s"),
        ([str(T0 * 1000 + 999), str((T0 + 60) * 1000)], "unix_ms"),
        ([str(T0 * 1_000_000 + 5), str((T0 + 60) * 1_000_000)], "unix_us"),
        ([f"{T0}.0", f"{T0 + 60}.5"], "unix_s"),  # float-looking seconds
        ([f"{T0 * 1000}.0", f"{(T0 + 60) * 1000}.0"], "unix_ms"),
    ],
)
def test_auto_detects_epoch_unit_by_magnitude(tmp_path: Path, times: list[str], unit: str) -> None:
    assert _read(tmp_path, times) == ([T0, T0 + 60], unit)


def test_auto_reads_iso_with_z_offset_and_naive(tmp_path: Path) -> None:
    times = [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05+02:00",
        "2024-01-02 03:04:05",
        "2024-01-02T03:04:05.250Z",
        "2024-01-02",
    ]
    got, how = _read(tmp_path, times)
    assert how == "iso"
    assert got == [T0, T1, T0, T0, T0 - (3 * 3600 + 4 * 60 + 5)]


def test_explicit_units_and_iso(tmp_path: Path) -> None:
    assert _read(tmp_path, [str(T0 * 1000)], "unix_ms") == ([T0], "unix_ms")
    assert _read(tmp_path, [str(T0 * 1_000_000)], "unix_us") == ([T0], "unix_us")
    assert _read(tmp_path, [str(T0)], "unix_s") == ([T0], "unix_s")
    assert _read(tmp_path, ["2024-01-02T03:04:05Z"], "iso") == ([T0], "iso")


def test_strftime_format(tmp_path: Path) -> None:
    assert _read(tmp_path, ["02/01/2024 03:04:05"], "%d/%m/%Y %H:%M:%S") == (
        [T0],
        "%d/%m/%Y %H:%M:%S",
    )
    zoned = _read(tmp_path, ["02/01/2024 05:04:05 +0200"], "%d/%m/%Y %H:%M:%S %z")
    assert zoned[0] == [T0]


def test_text_that_is_no_date_asks_for_a_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.timestamp_format") as err:
        _read(tmp_path, ["02/01/2024 03:04", "03/01/2024 03:04"])
    assert "02/01/2024 03:04" in str(err.value)


def test_a_row_not_in_the_format_is_named_by_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"line 3: timestamp 'soon' does not parse"):
        _read(tmp_path, ["2024-01-02T03:04:05Z", "soon"], "iso")


def test_native_datetime_parquet_column(tmp_path: Path) -> None:
    df = pl.select(u=pl.lit(1), i=pl.lit(2), t=pl.datetime(2024, 1, 2, 3, 4, 5))
    df.write_parquet(tmp_path / "log.parquet")
    cfg = DataCfg(source="parquet", path=str(tmp_path / "log.parquet"), columns=COLUMNS)
    out, info = load_raw_info(cfg)
    assert out["timestamp"].to_list() == [T0]
    assert info["timestamp_parsed_as"] == "datetime"


def test_unknown_format_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="strftime"):
        DataCfg(timestamp_format="seconds")


def test_the_epoch_unit_from_counts_is_the_one_the_median_picks() -> None:
    # issue #16: decided in one streaming pass, never by sorting the column; ties at a
    # unit's limit (an even count, the middle pair straddling it) included
    from negsamp.data.timestamps import _EPOCH_UNITS, _epoch_unit

    rng = np.random.default_rng(0)
    limits = [limit for limit, _, _ in _EPOCH_UNITS]
    cases = [rng.choice([1e9, 1e12, 1e15, 1e18], size=n) * rng.random(n) for n in (1, 2, 7, 50)]
    cases += [
        np.array([limits[0] - 2.0, limits[0] + 1.0]),
        np.array([limits[0] - 1.0, limits[0] + 3.0]),
    ]
    cases += [np.array([1e9, 1e18, 1e18, 2e9]), np.array([])]
    for values in cases:
        lf = pl.DataFrame({"t": values}, schema={"t": pl.Float64}).lazy()
        median = lf.select(pl.col("t").median()).collect().item() or 0
        expected = next((unit for limit, unit, _ in _EPOCH_UNITS if median < limit), "")
        assert _epoch_unit(lf, pl.col("t").abs()) == expected, values
