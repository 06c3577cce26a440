"""Sections of the data side: seeds and hardware, the data source, validation, the split."""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from negsamp.config.base import Frozen


class BaseCfg(Frozen):
    seed: int = Field(42, ge=0, description="root seed; every generator derives from it")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads; null: the cores this process may use"
    )
    engine: Literal["local", "ray"] = Field(
        "local", description="local: in process, no Ray; ray: sharded work on a Ray cluster"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {v!r}")


class SyntheticCfg(Frozen):
    n_users: int = Field(5000, ge=2)
    n_items: int = Field(2000, ge=2)
    n_interactions: int = Field(200_000, ge=10)
    n_tastes: int = Field(8, ge=1, description="latent taste clusters")
    tastes_per_user: int = Field(2, ge=1)
    taste_strength: float = Field(0.8, ge=0.0, le=1.0)
    zipf_exponent: float = Field(1.0, ge=0.0)
    activity_sigma: float = Field(1.2, ge=0.0, description="lognormal sigma of user activity")
    days: int = Field(365, ge=1)
    start: str = Field("2025-01-01")
    drift: float = Field(0.0, ge=0.0, le=1.0, description="0 = stationary; 1 = strong drift")
    new_item_share: float = Field(0.1, ge=0.0, lt=1.0)


class ColumnsCfg(Frozen):
    user: str = "user"
    item: str = "item"
    rating: str | None = "rating"
    timestamp: str | None = "timestamp"
    weight: str | None = Field(
        None, description="interaction strength (play count, watch time, quantity); null: none"
    )


DataSource = Literal[
    "synthetic", "movielens-100k", "movielens-1m", "movielens-csv", "csv", "tsv", "parquet"
]


class AppendBase(Frozen):
    """The ``data.source`` and ``data.path`` a batch was appended to."""

    source: str
    path: str


class AppendCfg(Frozen):
    """A batch added by ``negsamp ingest --append``: a raw-schema Parquet file, its md5 and
    the base log it extends (``base``; None in entries written before it was recorded)."""

    path: str
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")
    base: AppendBase | None = None


ItemFeaturesSource = Literal["none", "movielens-100k", "movielens-csv", "csv", "parquet"]


class ItemFeaturesCfg(Frozen):
    """``data.item_features``: an optional file of item attributes (see data/features.py)."""

    source: ItemFeaturesSource = Field(
        "none",
        description="none | movielens-100k (u.item) | movielens-csv (movies.csv) | csv | parquet",
    )
    path: str = Field(
        "src/negsamp/data/features.py",
        description="the attributes file or its MovieLens folder; an ingest dependency, so the "
        "default (used with source none) names a file ingest depends on anyway",
    )
    item: str = Field("item", description="csv | parquet: the item id column")
    attributes: tuple[str, ...] = Field(
        (), description="csv | parquet: attribute columns, each one attribute family"
    )
    multi_valued: tuple[str, ...] = Field(
        (), description="csv | parquet: attribute columns whose text holds several values"
    )
    separator: str = Field("|", min_length=1, description="splits a multi-valued column")
    release: str | None = Field(
        None, description="csv | parquet: release date column (parsed like timestamps)"
    )
    missing: Literal["refuse", "empty"] = Field(
        "empty",
        description="an item with a missing attribute value: refuse (error naming the row) or "
        "give it no value in that family (same_attribute then falls back to uniform)",
    )

    @model_validator(mode="after")
    def _columns(self) -> ItemFeaturesCfg:
        extra = sorted(set(self.multi_valued) - set(self.attributes))
        if extra:
            raise ValueError(
                f"data.item_features.multi_valued names {extra}, which are not in "
                "data.item_features.attributes: add them there"
            )
        if self.source in ("csv", "parquet") and not self.attributes and self.release is None:
            raise ValueError(
                f"data.item_features.source={self.source} needs data.item_features.attributes "
                "(attribute columns) or data.item_features.release (a release date column)"
            )
        return self


class DataCfg(Frozen):
    source: DataSource = "synthetic"
    path: str = "data/raw/synthetic.parquet"
    columns: ColumnsCfg = ColumnsCfg()
    rating_threshold: float | None = None
    appends: tuple[AppendCfg, ...] = ()
    timestamp_format: str = Field(
        "auto", description="auto | unix_s | unix_ms | unix_us | iso | a strftime format"
    )
    weight_aggregate: Literal["sum", "max", "mean", "last"] = "sum"
    zero_weight: Literal["drop", "refuse"] = "drop"
    synthetic: SyntheticCfg = SyntheticCfg()
    item_features: ItemFeaturesCfg = ItemFeaturesCfg()

    @field_validator("timestamp_format")
    @classmethod
    def _timestamp_format(cls, v: str) -> str:
        if v in ("auto", "unix_s", "unix_ms", "unix_us", "iso") or "%" in v:
            return v
        raise ValueError(
            f"timestamp_format must be auto, unix_s, unix_ms, unix_us, iso or a strftime "
            f"format such as '%d/%m/%Y %H:%M' (with % codes), got {v!r}"
        )

    @property
    def base(self) -> AppendBase:
        """What an append made now extends: this source and path (as written)."""
        return AppendBase(source=self.source, path=self.path)

    @model_validator(mode="after")
    def _appends_fit_base(self) -> DataCfg:
        """Batches appended to another source or path must not be mixed into this one (#13)."""
        here = (self.source, os.path.normpath(self.path))
        other = [
            (i, a.base)
            for i, a in enumerate(self.appends)
            if a.base is not None and (a.base.source, os.path.normpath(a.base.path)) != here
        ]
        if other:
            which = ", ".join(f"data.appends[{i}]" for i, _ in other)
            b = other[0][1]
            raise ValueError(
                f"{which} {'was' if len(other) == 1 else 'were'} appended to "
                f"{b.source} {b.path}, not to data.source={self.source} data.path={self.path}, "
                "so those rows would be mixed into another dataset: clear the appends on purpose "
                "(`negsamp ingest --clear-appends`, or `--set data.appends=[]` for one run) "
                "or set data.source and data.path back"
            )
        return self


def _iso_text(v: Any) -> Any:
    """YAML reads an unquoted 1970-01-01 as a date: take it as the ISO text it was."""
    return v.isoformat() if isinstance(v, _dt.date) else v


class ValidateCfg(Frozen):
    min_interactions_per_user: int = Field(3, ge=1)
    min_timestamp: str = "1970-01-02"
    max_timestamp: str = "2100-01-01"
    failure_examples: int = Field(5, ge=1, le=100)
    min_eligible_user_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of users that must have >= split.min_interactions rows",
    )

    @field_validator("min_timestamp", "max_timestamp", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> Any:
        return _iso_text(v)


SplitMethod = Literal["leave_one_out", "temporal", "random", "random_holdout"]


class SplitCfg(Frozen):
    method: SplitMethod = "leave_one_out"
    validation: bool = True
    temporal_cutoff: float = Field(0.8, gt=0.0, lt=1.0)
    min_interactions: int = Field(3, ge=2)
    holdout_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="random_holdout: share of each user's rows in test"
    )
    min_test_user_share: float = Field(
        0.05, ge=0.0, le=1.0, description="refuse a split with fewer test users than this share"
    )
