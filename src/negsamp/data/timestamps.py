"""Timestamps as logs write them -> Int64 unix seconds (``data.timestamp_format``).

Integer or float epochs in seconds, milliseconds or microseconds (``auto`` tells them apart
by the median magnitude), ISO 8601 text with or without a zone (``Z``, ``+02:00``; naive
times are UTC), native datetimes and dates, or any strftime format. Each is one polars
expression over the whole column; a value that does not fit becomes null, which the loader
reports by line.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from negsamp.data.errors import DataError

# auto: an epoch's median magnitude below these is seconds, else milliseconds, else microseconds
# (1e11 s and 1e14 ms are both the year 5138; MovieLens seconds are ~1e9, ms ~1e12)
_EPOCH_UNITS = ((1e11, "unix_s", 1), (1e14, "unix_ms", 1_000), (1e17, "unix_us", 1_000_000))
_DIVISORS = {unit: d for _, unit, d in _EPOCH_UNITS}
# ISO 8601 as logs write it: with a zone (Z is read as +00:00) or naive (taken as UTC)
_ISO_ZONED = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_ISO_NAIVE = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


def timestamp_expr(
    lf: pl.LazyFrame, dtype: pl.DataType, fmt: str, path: Path
) -> tuple[pl.Expr, str]:
    """Any timestamp column -> (Int64 unix seconds expression, how it was read).

    Native datetimes and dates are converted (naive ones are UTC) whatever ``fmt`` says.
    Otherwise ``fmt`` (``data.timestamp_format``) decides; ``auto`` reads numbers as epochs
    whose unit the median magnitude tells (see ``_EPOCH_UNITS``) and text as ISO 8601.
    """
    col = pl.col("timestamp")
    if isinstance(dtype, pl.Datetime):
        return col.dt.epoch("s"), "datetime"
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.epoch("s"), "date"
    numeric = dtype.is_numeric()
    if fmt == "auto" and not numeric:  # text: numbers (maybe "964982703.0") or dates, by a sample
        sample = lf.select(col).drop_nulls().head(1000).collect(engine="streaming").to_series()
        numeric = sample.cast(pl.Float64, strict=False).null_count() == 0
        unparsed = pl.select(_iso(pl.lit(sample))).to_series().null_count()
        if not numeric and sample.len() and unparsed == sample.len():
            raise DataError(
                f"{path}: the timestamp column holds neither numbers nor ISO 8601 dates "
                f"(e.g. {sample[0]!r}); set data.timestamp_format to its strftime format "
                "(e.g. '%d/%m/%Y %H:%M') or to unix_s, unix_ms, unix_us or iso"
            )
        fmt = "auto" if numeric else "iso"
    if fmt == "iso":
        return _iso(col.cast(pl.String)), "iso"
    if "%" in fmt:
        text = col.cast(pl.String).str.strip_chars()
        zoned = "%z" in fmt or "%:z" in fmt or "%#z" in fmt
        parsed = text.str.to_datetime(
            fmt, strict=False, time_unit="us", time_zone="UTC" if zoned else None
        )
        return parsed.dt.epoch("s"), fmt
    number = col.cast(pl.Float64, strict=False)
    if fmt == "auto":
        fmt = _epoch_unit(lf, number.abs())
        if not fmt:
            median = lf.select(number.abs().median()).collect(engine="streaming").item()
            raise DataError(
                f"{path}: timestamps around {median:.3g} are too large for epoch seconds, "
                "milliseconds or microseconds; set data.timestamp_format (unix_s, unix_ms, "
                "unix_us, iso or a strftime format)"
            )
    divisor = _DIVISORS[fmt]
    if dtype.is_integer():
        return col.cast(pl.Int64, strict=False).floordiv(divisor), fmt
    return (number / divisor).floor().cast(pl.Int64, strict=False), fmt


def _epoch_unit(lf: pl.LazyFrame, size: pl.Expr) -> str:
    """The first unit of ``_EPOCH_UNITS`` whose limit the median of ``size`` lies below
    ("" if none; an all-null column counts as 0), as ``size.median()`` would decide it.

    One streaming pass of counts and extremes, never the column in memory (a median
    sorts it): with n values, the median lies below a limit when more than half do, or,
    n even and exactly half below, when the mean of the two middle values does.
    """
    found = (
        lf.select(
            size.count().alias("n"),
            *(
                e
                for i, (limit, _, _) in enumerate(_EPOCH_UNITS)
                for e in (
                    (size < limit).sum().alias(f"below{i}"),
                    size.filter(size < limit).max().alias(f"top{i}"),
                    size.filter(size >= limit).min().alias(f"bottom{i}"),
                )
            ),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    n = found["n"]
    if n == 0:
        return _EPOCH_UNITS[0][1]
    for i, (limit, unit, _) in enumerate(_EPOCH_UNITS):
        below = found[f"below{i}"]
        if below > n // 2 or (
            n % 2 == 0
            and below == n // 2
            and found[f"bottom{i}"] is not None
            and (found[f"top{i}"] + found[f"bottom{i}"]) / 2 < limit
        ):
            return unit
    return ""


def _iso(text: pl.Expr) -> pl.Expr:
    """ISO 8601 text -> Int64 unix seconds: with a zone (``Z`` = +00:00) or naive (UTC);
    null where no form fits."""
    t = text.str.strip_chars().str.replace(r"[zZ]$", "+00:00")
    zoned = [
        t.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _ISO_ZONED
    ]
    naive = [t.str.to_datetime(f, strict=False, time_unit="us") for f in _ISO_NAIVE]
    return pl.coalesce([e.dt.epoch("s") for e in (*zoned, *naive)])
