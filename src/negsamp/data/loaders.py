"""Read a raw interaction log (MovieLens, CSV/TSV/Parquet, synthetic) into one schema.

Every source becomes the same frame, so nothing downstream knows where data came from:
``user`` and ``item`` (the raw ids: Int64 when the ids are integers, else String),
``rating`` Float64 (null where the source has none), ``timestamp`` Int64 unix seconds
(null where the source has none), and ``weight`` Float64 when ``data.columns.weight`` is
set (the interaction's strength: play count, watch time, quantity; finite and >= 0).
Text is read lazily as strings and cast by us, so a row that does not parse is reported
by its line number instead of a bare polars error.

Timestamps come as they are (``data.timestamp_format``, :mod:`negsamp.data.timestamps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from negsamp.config import ColumnsCfg, DataCfg
from negsamp.data.errors import DataError
from negsamp.data.timestamps import timestamp_expr

RAW_SCHEMA = ("user", "item", "rating", "timestamp")
# what a file inside a downloaded MovieLens folder is called, so data.path may name the folder
DEFAULT_FILES = {
    "movielens-100k": "u.data",
    "movielens-1m": "ratings.dat",
    "movielens-csv": "ratings.csv",
}
MOVIELENS_CSV_COLUMNS = ColumnsCfg(
    user="userId", item="movieId", rating="rating", timestamp="timestamp"
)
SYNTHETIC_COLUMNS = ColumnsCfg()
_MAX_SHOWN = 5
_LINE = "_line"  # 1-based line of the file a row came from (0-based row for Parquet)


def resolve_path(cfg: DataCfg) -> Path:
    """The file ``cfg.path`` names (a MovieLens folder resolves to its ratings file)."""
    path = Path(cfg.path)
    if path.is_dir() and cfg.source in DEFAULT_FILES:
        path = path / DEFAULT_FILES[cfg.source]
    if not path.exists():
        hint = (
            "run `negsamp stage synthesize` first, or point data.path at the generated file"
            if cfg.source == "synthetic"
            else f"set data.path in params.yaml to your {cfg.source} file"
        )
        raise DataError(f"{path}: file not found (data.source={cfg.source}); {hint}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; set data.path to the {cfg.source} file inside it")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); check data.path or re-download the file")
    return path


def load_raw(cfg: DataCfg) -> pl.DataFrame:
    """Load ``cfg.path`` as ``cfg.source`` into the raw schema (see module docstring).

    Rows keep file order. Raises :class:`DataError` naming the file when it is missing,
    empty, lacks a column, or has rows that do not parse.
    """
    return load_raw_info(cfg)[0]


def load_raw_info(cfg: DataCfg) -> tuple[pl.DataFrame, dict[str, Any]]:
    """:func:`scan_raw_info`, collected: the whole log in memory."""
    lf, info = scan_raw_info(cfg)
    return collect(lf, resolve_path(cfg), cfg.source), info


def scan_raw_info(cfg: DataCfg) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """The raw log as a lazy frame in the raw schema, checked in one streaming pass.

    Every row was read and checked (ids, values, weights) without holding the log in
    memory; what comes back re-reads the file when collected (issue #16: a log larger
    than memory). Also returns what was decided reading it: ``timestamp_format`` (the
    setting) and ``timestamp_parsed_as`` (unix_s | unix_ms | unix_us | iso | datetime |
    the strftime format; None when the log has no timestamp column).
    """
    info: dict[str, Any] = {"timestamp_format": cfg.timestamp_format, "timestamp_parsed_as": None}
    path = resolve_path(cfg)
    source = cfg.source
    sep = "\t" if source == "tsv" else ","
    try:
        if source == "movielens-100k":
            lf, row_word = _scan_fixed(path, "\t"), "line"
        elif source == "movielens-1m":
            lf, row_word = _scan_fixed(path, "::"), "line"
        elif source in ("movielens-csv", "csv", "tsv"):
            columns = _columns(cfg, MOVIELENS_CSV_COLUMNS if source == "movielens-csv" else None)
            lf = _scan_header(path, sep, columns, source=source)
            row_word = "line"
        elif source in ("parquet", "synthetic"):
            columns = _columns(cfg, SYNTHETIC_COLUMNS if source == "synthetic" else None)
            lf, row_word = _scan_parquet(path, columns, source=source), "row"
        else:  # pragma: no cover - the config Literal rejects it first
            raise DataError(f"unknown data.source {source!r}")
        lf = _with_shared_weight(lf, cfg, source)
        return _coerce(lf, path, source, row_word, cfg, info), info
    except pl.exceptions.PolarsError as err:
        raise _unreadable(path, source, err) from None


def collect(lf: pl.LazyFrame, path: Path, source: str) -> pl.DataFrame:
    """``lf`` (a scan of ``path``) run by the streaming engine; a read error is a DataError."""
    try:
        return lf.collect(engine="streaming")
    except pl.exceptions.PolarsError as err:
        raise _unreadable(path, source, err) from None


def _unreadable(path: Path, source: str, err: Exception) -> DataError:
    return DataError(
        f"{path} could not be read as {source} ({_first_line(err)}); "
        "check data.source matches the file's format (separator, header, columns)"
    )


def _scan_fixed(path: Path, sep: str) -> pl.LazyFrame:
    """Headerless ``user<sep>item<sep>rating<sep>timestamp`` lines, as strings.

    Lines are split by us (polars' separator is a single byte, MovieLens-1M/10M use
    ``::``); a line without exactly four fields keeps a ``_fields`` count to report.
    """
    lines = pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",  # a byte no ratings file holds: one column per line
        quote_char=None,
        schema={"line": pl.String},
    ).with_row_index(_LINE, offset=1)
    parts = pl.col("line").str.split(sep)
    return lines.filter(pl.col("line").str.strip_chars() != "").select(
        pl.col(_LINE),
        *(
            parts.list.get(i, null_on_oob=True).str.strip_chars().alias(c)
            for i, c in enumerate(RAW_SCHEMA)
        ),
        parts.list.len().alias("_fields"),
        pl.col("line").alias("_text"),
    )


def _scan_header(path: Path, sep: str, columns: ColumnsCfg, *, source: str) -> pl.LazyFrame:
    """A delimited file with a header row, as strings except (generic files) the id columns.

    Generic files infer the id type over the whole file (integers or strings); MovieLens
    ids are integers by definition, so nothing needs inferring.
    """
    wanted = _wanted(columns)
    try:
        header = pl.scan_csv(path, separator=sep, infer_schema=False).collect_schema().names()
    except pl.exceptions.NoDataError:
        raise DataError(f"{path} has no header row; check data.path") from None
    _check_columns(path, header, wanted, source)
    blank = _check_lines(path, sep, len(header))
    names = {src: dst for dst, src in wanted.items()}
    schema: dict[str, pl.DataType] = dict.fromkeys(header, pl.String())
    if source != "movielens-csv":  # one inference pass over the whole file, then fixed
        ids = [wanted["user"], wanted["item"]]
        others = {c: pl.String() for c in header if c not in ids}
        inferred = pl.scan_csv(
            path, separator=sep, infer_schema_length=None, schema_overrides=others
        ).collect_schema()
        schema.update({c: inferred[c] for c in ids})
    lf = pl.scan_csv(path, separator=sep, schema=schema, low_memory=True)
    lf = lf.with_row_index(_LINE, offset=2)  # line 1 is the header
    if blank:  # an empty line is no row (polars reads it as one of nulls)
        lf = lf.filter(~pl.col(_LINE).is_in(blank))
    return lf.select(pl.col(_LINE), *(pl.col(src).alias(dst) for src, dst in names.items()))


def _scan_parquet(path: Path, columns: ColumnsCfg, *, source: str) -> pl.LazyFrame:
    wanted = _wanted(columns)
    try:
        lf = pl.scan_parquet(path, low_memory=True)  # bounded read-ahead (issue #16)
        header = lf.collect_schema().names()
    except pl.exceptions.PolarsError as err:
        raise DataError(
            f"{path} is not a readable Parquet file ({_first_line(err)}); "
            "check data.path and data.source"
        ) from None
    _check_columns(path, header, wanted, source)
    return lf.with_row_index(_LINE).select(
        pl.col(_LINE), *(pl.col(src).alias(dst) for dst, src in wanted.items())
    )


def _columns(cfg: DataCfg, fixed: ColumnsCfg | None) -> ColumnsCfg:
    """The column mapping of a file: ``data.columns``, or a source's fixed names plus the
    weight column ``data.columns.weight`` names (e.g. MovieLens' ``rating``)."""
    if fixed is None:
        return cfg.columns
    return fixed.model_copy(update={"weight": cfg.columns.weight})


def _weight_share(columns: ColumnsCfg) -> str | None:
    """The raw-schema field whose column ``columns.weight`` also names (the rating, say)."""
    if columns.weight is None:
        return None
    for field in ("rating", "timestamp", "user", "item"):
        if getattr(columns, field) == columns.weight:
            return field
    return None


def _with_shared_weight(lf: pl.LazyFrame, cfg: DataCfg, source: str) -> pl.LazyFrame:
    """Add ``weight`` where it is a copy of another field: MovieLens' fixed fields (only the
    rating can be a weight there) or a column both ``data.columns.weight`` and another key name."""
    weight = cfg.columns.weight
    if weight is None:
        return lf
    if source in ("movielens-100k", "movielens-1m"):
        if weight != "rating":
            raise DataError(
                f"data.columns.weight={weight!r}, but a {source} file has only the fields "
                f"{', '.join(RAW_SCHEMA)}: set data.columns.weight to rating (or null)"
            )
        return lf.with_columns(pl.col("rating").alias("weight"))
    fixed = {"movielens-csv": MOVIELENS_CSV_COLUMNS, "synthetic": SYNTHETIC_COLUMNS}
    share = _weight_share(_columns(cfg, fixed.get(source)))
    return lf if share is None else lf.with_columns(pl.col(share).alias("weight"))


def _wanted(columns: ColumnsCfg) -> dict[str, str]:
    """Raw-schema name -> column name in the file, for the columns the source has."""
    wanted = {"user": columns.user, "item": columns.item}
    if columns.rating is not None:
        wanted["rating"] = columns.rating
    if columns.timestamp is not None:
        wanted["timestamp"] = columns.timestamp
    if columns.weight is not None and _weight_share(columns) is None:
        wanted["weight"] = columns.weight
    if len(set(wanted.values())) < len(wanted):
        raise DataError(f"data.columns maps two fields to the same column: {wanted}")
    return wanted


def _check_columns(path: Path, found: list[str], wanted: dict[str, str], source: str) -> None:
    for key, name in wanted.items():
        if name in found:
            continue
        if source in ("movielens-csv", "synthetic"):
            todo = f"a {source} file always has it: check data.path and data.source"
        else:
            todo = f"set data.columns.{key} to the right name" + (
                "" if key in ("user", "item") else " (or null if the data has none)"
            )
            todo += ", or check data.source (separator, header)"
        raise DataError(
            f"{path}: no column {name!r} (the {key} column); columns found: {found}; {todo}"
        )


def _check_lines(path: Path, sep: str, n_fields: int) -> list[int]:
    """Refuse lines whose field count differs from the header's, and repeated header lines.

    polars reads a short line (``3,7`` under a four-column header) with nulls for the
    missing fields, so the count is checked on the raw text first. Quoted fields are
    removed before counting, so a quoted separator is no field break. Returns the line
    numbers of empty lines (skipped, not refused). One pass over the file, which collects
    only offending lines. A file whose quoted fields span lines is left to polars' parser
    (its line numbers then count records).
    """
    raw = pl.scan_csv(
        path, has_header=False, separator="\x1f", quote_char=None, schema={"l": pl.String}
    ).with_row_index("n", offset=1)
    header = raw.head(1).select(pl.col("l").str.strip_chars_end("\r")).collect().item() or ""
    col = pl.col("l").fill_null("")
    quoted = col.str.contains('"', literal=True)
    line = raw.filter(pl.col("n") > 1).select(
        "n",
        pl.col("l").alias("text"),
        # separators outside quotes; quotes are rare, so the regex runs on few lines
        pl.when(quoted)
        .then(col.str.replace_all(r'"[^"]*"', "").str.count_matches(sep, literal=True))
        .otherwise(col.str.count_matches(sep, literal=True))
        .add(1)
        .alias("k"),
        pl.when(col.str.len_bytes() < 16)  # only a short line can be blank
        .then(col.str.strip_chars() == "")
        .otherwise(False)
        .alias("blank"),
        (quoted & (col.str.count_matches('"', literal=True) % 2 == 1)).alias("odd"),
        col.str.strip_chars_end("\r").eq(header).alias("repeat"),
    )
    found = line.select(  # one pass over the file
        pl.col("n").filter("blank").implode().alias("blank"),
        pl.col("odd").any().alias("odd"),
        pl.col("n").filter("repeat").head(_MAX_SHOWN).implode().alias("repeats"),
        pl.struct("n", "text", "k")
        .filter(~pl.col("blank") & (pl.col("k") != n_fields))
        .head(_MAX_SHOWN)
        .implode()
        .alias("off"),
    ).collect()
    repeats = found["repeats"][0].to_list()
    if repeats:
        shown = ", ".join(str(n) for n in repeats)
        raise DataError(
            f"{path}: line {shown} repeats the header line {header!r} (as when files are "
            "concatenated with their headers); delete the repeated header line(s) and re-run"
        )
    if found["odd"][0]:
        return []  # a quoted field spans lines: lines are no records, leave it to polars
    off = found["off"][0].struct.unnest()
    if off.height:
        shown = "; ".join(
            f"line {n} {t.rstrip(chr(13))!r} has {k} field(s)" for n, t, k in off.iter_rows()
        )
        raise DataError(
            f"{path}: rows must have the header's {n_fields} fields, but {shown}; "
            "fix or remove those lines (a short line would be read with missing values)"
        )
    return found["blank"][0].to_list()


def _coerce(
    lf: pl.LazyFrame, path: Path, source: str, row_word: str, cfg: DataCfg, info: dict[str, Any]
) -> pl.LazyFrame:
    """Cast to the raw schema; rows whose values do not parse raise a DataError.

    The checks are one streaming pass of counts; only when one fails are the first
    offending rows read back (a second pass that stops at them).
    """
    schema = lf.collect_schema()
    casts: dict[str, pl.Expr] = {}
    for name in ("user", "item"):
        casts[name] = _id_expr(name, schema[name], strict_int=source.startswith("movielens"))
    casts["rating"] = (
        pl.col("rating").cast(pl.Float64, strict=False)
        if "rating" in schema
        else pl.lit(None, pl.Float64)
    )
    if "timestamp" in schema:
        casts["timestamp"], info["timestamp_parsed_as"] = timestamp_expr(
            lf, schema["timestamp"], cfg.timestamp_format, path
        )
    else:
        casts["timestamp"] = pl.lit(None, pl.Int64)
    if "weight" in schema:
        casts["weight"] = pl.col("weight").cast(pl.Float64, strict=False)
    bad = [
        (casts[c].is_null() & pl.col(c).is_not_null()).alias(f"_bad_{c}")
        for c in casts
        if c in schema and c not in ("user", "item", "rating")
    ]
    # every row needs both ids: an empty field (or one of blanks) is refused like a bad value
    bad += [casts[c].is_null().alias(f"_bad_{c}") for c in ("user", "item")]
    if "rating" in schema:  # nan / inf would pass any threshold test unnoticed
        finite = casts["rating"].is_finite().fill_null(True)
        bad.append(
            ((casts["rating"].is_null() & pl.col("rating").is_not_null()) | ~finite).alias(
                "_bad_rating"
            )
        )
    if "_fields" in schema:
        bad.append((pl.col("_fields") != len(RAW_SCHEMA)).alias("_bad_fields"))
    out = lf.select(pl.col(_LINE), *(e.alias(c) for c, e in casts.items()), *bad)
    flags = [c for c in out.collect_schema().names() if c.startswith("_bad_")]
    any_bad = pl.any_horizontal(flags) if flags else pl.lit(False)
    wrong_weight, rule, zero_refused = _weight_rule(cfg)
    counts = [pl.len().alias("n"), any_bad.sum().alias("bad")]
    if "weight" in casts:
        counts += [
            wrong_weight.sum().alias("wrong"),
            (wrong_weight & (pl.col("weight") == 0)).sum().alias("zero"),
        ]
    found = out.select(counts).collect(engine="streaming").row(0, named=True)
    if found["n"] == 0:
        raise DataError(f"{path} has no data rows; check data.path")
    n_bad = found["bad"]
    if n_bad:
        shown = out.filter(any_bad).head(_MAX_SHOWN).collect(engine="streaming")
        message = _bad_rows_message(lf, shown, path, source, row_word, n_bad)
        if n_bad == found["n"]:
            message += f" (no row parsed at all: is data.source={source!r} right for this file?)"
        raise DataError(message)
    if "weight" in casts:
        if found["wrong"]:
            shown = out.filter(wrong_weight).head(_MAX_SHOWN).select(_LINE, "weight")
            rows = shown.collect(engine="streaming").iter_rows()
            fix = "fix or remove those rows"
            if zero_refused and found["zero"]:
                fix += ", or set data.zero_weight: drop to drop zero-weight rows"
            raise DataError(
                f"{path}: {found['wrong']} row(s) have a weight (column {cfg.columns.weight!r}) "
                f"that is not {rule}: "
                + ", ".join(f"{row_word} {n}: {v if v is not None else 'empty'}" for n, v in rows)
                + f"; {fix}"
            )
        return out.select(*RAW_SCHEMA, "weight")
    return out.select(RAW_SCHEMA)


def _weight_rule(cfg: DataCfg) -> tuple[pl.Expr, str, bool]:
    """Weights must be finite and >= 0 (and > 0 with ``data.zero_weight: refuse``):
    (the expression of a wrong weight, the rule in words, whether 0 is refused)."""
    w = pl.col("weight")
    wrong = w.is_null() | ~w.is_finite() | (w < 0)
    if cfg.zero_weight == "refuse":
        return wrong | (w == 0), "finite and > 0 (data.zero_weight: refuse)", True
    return wrong, "finite and >= 0", False


def _id_expr(name: str, dtype: pl.DataType, *, strict_int: bool) -> pl.Expr:
    """Integer ids become Int64; other ids (strings, categoricals) become String."""
    if strict_int or dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    if dtype.is_float():  # 3.0 is id 3; 3.5 is no id and is reported as unparseable
        integral = pl.col(name) == pl.col(name).floor()
        return pl.when(integral).then(pl.col(name).cast(pl.Int64, strict=False))
    trimmed = pl.col(name).cast(pl.String).str.strip_chars()  # " a" and "a" are one id
    return pl.when(trimmed != "").then(trimmed)


def _bad_rows_message(
    lf: pl.LazyFrame, bad: pl.DataFrame, path: Path, source: str, row_word: str, n_bad: int
) -> str:
    shown = bad.head(_MAX_SHOWN)
    raw = lf.filter(pl.col(_LINE).is_in(shown[_LINE].to_list())).collect()
    raw_by_line = {r[_LINE]: r for r in raw.iter_rows(named=True)}
    lines = []
    for row in shown.iter_rows(named=True):
        values = raw_by_line.get(row[_LINE], {})
        if row.get("_bad_fields"):
            why = (
                f"{values.get('_text')!r} has {values.get('_fields')} field(s), "
                f"expected 4 ({' '.join(RAW_SCHEMA)})"
            )
        else:
            why = ", ".join(
                _why(c, values.get(c), row.get(c))
                for c in (*RAW_SCHEMA, "weight")
                if row.get(f"_bad_{c}")
            )
            ids = [f"{c} {values.get(c)!r}" for c in ("user", "item") if not row.get(f"_bad_{c}")]
            if ids:
                why += f" ({', '.join(ids)})"
        lines.append(f"{row_word} {row[_LINE]}: {why}")
    first = f" (the first {len(lines)})" if n_bad > len(lines) else ""
    return (
        f"{path}: {n_bad} row(s) could not be read as {source}{first}: "
        + "; ".join(lines)
        + "; fix or remove those rows, or check data.source/data.columns match the file"
    )


def _why(column: str, raw: object, value: object) -> str:
    """Why one value of a row was refused: missing, blank, not finite, or not parseable."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return f"{column} is empty" + ("" if raw is None else f" ({raw!r})")
    if column == "rating" and isinstance(value, float):
        return f"rating {raw!r} is not a finite number"
    return f"{column} {raw!r} does not parse"


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
