"""The Python API: sample negatives, train, evaluate and recommend from a DataFrame.

A thin layer over the modules the pipeline stages run (``data.encode``, ``split``,
``samplers``, ``train``, ``metrics.report``, ``recommend``): the same functions, in memory
instead of on files. Settings are keyword arguments in params.yaml's names, validated by the
same configuration classes, so a misspelt one fails with the message params.yaml gets::

    import negsamp
    data = negsamp.Interactions.from_frame(df, user="user_id", item="movie_id")
    parts = negsamp.split(data)                       # leave-one-out: train / valid / test
    negs = negsamp.sample_negatives(data, sampler="popularity", alpha=0.75, n_neg=4, seed=0)
    model = negsamp.fit(parts, model="bpr", sampler="popularity", epochs=20, factors=32)
    negsamp.evaluate(model, parts)                    # the evaluate stage's metrics.json keys
    model.recommend(["alice", "bob"], k=10)           # original ids, seen items excluded

Ids are whatever the frame holds (strings, ints, ...); they are encoded to dense ints as
the ingest stage does, and results come back in the original ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from negsamp import config as C
from negsamp.interactions import Interactions as _CSR

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Interactions",
    "Model",
    "Split",
    "evaluate",
    "fit",
    "sample_negatives",
    "split",
]


def _polars(df: Any) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    if isinstance(df, pl.LazyFrame):
        return df.collect()
    try:
        return pl.from_pandas(df)
    except (TypeError, ValueError):
        raise TypeError(f"expected a polars or pandas DataFrame, got {type(df).__name__}") from None


@dataclass(frozen=True)
class Interactions:
    """Implicit-feedback positives with their id maps.

    frame: one row per (user, item): ``user`` / ``item`` Int32 dense ids, ``count`` Int32
    (events aggregated), ``timestamp`` Int64 (0 when the source has none), sorted by
    (user, timestamp, item), as the ingest stage writes interactions.parquet.
    user_ids / item_ids: the original id of each dense id (index = dense id).
    """

    frame: pl.DataFrame
    user_ids: pl.Series
    item_ids: pl.Series

    @classmethod
    def from_frame(
        cls,
        df: pl.DataFrame | pd.DataFrame,
        user: str = "user",
        item: str = "item",
        *,
        timestamp: str | None = None,
        rating: str | None = None,
        rating_threshold: float | None = None,
    ) -> Interactions:
        """Positives from an event log (polars or pandas) with ids of any type.

        user / item: the id columns; timestamp: unix seconds (the leave-one-out split holds
        out each user's latest item; without it ties break by item id); rating with
        ``rating_threshold``: keep events rated at least that. Repeated (user, item) events
        become one positive whose ``count`` is their number.
        """
        from negsamp.data.encode import encode, to_implicit

        df = _polars(df)
        missing = [c for c in (user, item, timestamp, rating) if c and c not in df.columns]
        if missing:
            raise ValueError(f"the frame has no column {missing[0]!r} (columns: {df.columns})")
        raw = df.select(
            pl.col(user).alias("user"),
            pl.col(item).alias("item"),
            (pl.col(rating) if rating else pl.lit(None)).cast(pl.Float64).alias("rating"),
            (pl.col(timestamp) if timestamp else pl.lit(None)).cast(pl.Int64).alias("timestamp"),
        )
        frame, users, items = encode(to_implicit(raw, rating_threshold))
        return cls(frame, users["original"], items["original"])

    @property
    def n_users(self) -> int:
        return self.user_ids.len()

    @property
    def n_items(self) -> int:
        return self.item_ids.len()

    def csr(self, frame: pl.DataFrame | None = None) -> _CSR:
        """The positives of ``frame`` (default: all of them) as the CSR every module speaks."""
        return _CSR.from_frame(self.frame if frame is None else frame, self.n_users, self.n_items)

    def dense_users(self, users: Iterable[Any]) -> np.ndarray:
        """int64 dense ids of original user ids; an unknown one is a ValueError."""
        wanted = pl.Series("original", list(users), dtype=self.user_ids.dtype, strict=False)
        index = pl.DataFrame({"original": self.user_ids, "dense": np.arange(self.n_users)})
        got = pl.DataFrame({"original": wanted}).join(
            index, on="original", how="left", maintain_order="left"
        )
        unknown = got.filter(pl.col("dense").is_null())["original"]
        if unknown.len():
            raise ValueError(
                f"{unknown.len()} user(s) not in the interactions, e.g. {unknown.head(3).to_list()}"
            )
        return got["dense"].to_numpy().astype(np.int64)

    def __len__(self) -> int:
        return self.frame.height


@dataclass(frozen=True)
class Split:
    """Train / validation / test rows of one :class:`Interactions` (dense ids, same schema).

    stats: the split stage's split.json; config: the ``split`` settings that made it.
    """

    data: Interactions
    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    stats: dict[str, Any]
    config: C.SplitCfg


def _validated(doc: dict[str, Any], where: str) -> C.Config:
    """The whole configuration tree validated by the one validation params.yaml gets."""
    return C.from_dict(doc, where)


def _plugin(section: type[C.ModelSection] | type[C.SamplerSection], spec: Any) -> dict[str, Any]:
    """A plug-in section in params.yaml layout from ``"name"`` or ``{"name": ..., key: value}``:
    shared keys at the section level, every other key (typos included, so they are reported
    as unknown keys of the plug-in) in the plug-in's block."""
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", section.model_fields["name"].default)
    out: dict[str, Any] = {"name": name}
    own = {}
    for key, value in spec.items():
        if key in section.SHARED:
            out[key] = value
        else:
            own[key] = value
    if own:
        out[name] = own
    return out


def split(data: Interactions, method: str = "leave_one_out", **settings: Any) -> Split:
    """Hold out test (and validation) items as the split stage does.

    settings: the ``split`` section's keys (``validation``, ``temporal_cutoff``,
    ``min_interactions``). Users with too few interactions stay in train only.
    """
    from negsamp import split as splitting

    cfg = _validated({"split": {"method": method, **settings}}, "negsamp.split()").split
    s = splitting.split(data.frame, cfg)
    if s.test.height == 0:
        raise ValueError(f"the split left no test interactions ({s.stats}); lower min_interactions")
    return Split(data, s.train, s.valid, s.test, s.stats, cfg)


def sample_negatives(
    data: Interactions,
    sampler: str = "uniform",
    n_neg: int = 4,
    seed: int = 0,
    pool_epochs: int = 1,
    **settings: Any,
) -> pl.DataFrame:
    """``n_neg`` negatives for every positive of ``data``, drawn as the sample-negatives stage
    draws a training pool (same generator streams: the same seed gives the same draws).

    sampler: a data-side sampler (uniform, popularity, stratified; hard and mixed return
    their base sampler's candidates). settings: the sampler's keys (``alpha``, ``bands``,
    ``exclude``, ``replace``, ...). No negative is one of its user's positives (unless
    ``exclude="none"``); every pool is audited before it is returned.

    Returns one row per positive and epoch: ``user``, ``item`` (the positive), ``epoch``
    Int16, ``negatives`` (array of ``n_neg`` items), in original ids.
    """
    from negsamp.samplers import build_sampler, no_exclusions
    from negsamp.samplers.pool import audit_pool, training_pool

    section = _plugin(C.SamplerSection, {"name": sampler, "n_neg": n_neg, **settings})
    section["pool_epochs"] = pool_epochs
    cfg = _validated({"base": {"seed": seed}, "sampler": section}, "negsamp.sample_negatives()")
    s = cfg.sampler.active
    train = data.csr()
    exclude = {"train": train, "train+valid": train}.get(s.exclude)
    if exclude is None:
        exclude = no_exclusions(train.n_users, train.n_items)
    pool = training_pool(
        build_sampler(s, train), train, s.pool_width, s.pool_epochs, seed, exclude=exclude
    )
    audit_pool(pool, exclude)
    negs = pool["neg_items"].to_numpy().astype(np.int64)
    flat = data.item_ids.gather(negs.reshape(-1))
    return pl.DataFrame(
        {
            "user": data.user_ids.gather(pool["user"].to_numpy().astype(np.int64)),
            "item": data.item_ids.gather(pool["pos_item"].to_numpy().astype(np.int64)),
            "epoch": pool["epoch"],
            "negatives": flat.reshape((pool.height, s.pool_width)),
        }
    )


@dataclass
class Model:
    """A trained recommender with its data's id maps.

    net: the model (``score``, ``score_all``, ``save``; see :mod:`negsamp.models`);
    config: the validated configuration it was trained with; history: one row per epoch
    (loss, ``valid_*`` metrics). ``seen`` holds every positive of the data it came from.
    """

    net: Any
    config: C.Config
    data: Interactions
    history: list[dict[str, float]] = field(default_factory=list)

    def recommend(self, users: Sequence[Any] | Any, k: int = 10) -> pl.DataFrame:
        """Top ``k`` items for each of ``users`` (original ids), none the user has in the data.

        Returns user, rank (1..k), item, score; original ids, best first. A user with fewer
        than k unseen items gets fewer rows. An unknown user is a ValueError.
        """
        from negsamp.recommend import to_frame, top_k

        if isinstance(users, str) or not isinstance(users, Iterable):
            users = [users]
        dense = self.data.dense_users(users)
        top = top_k(
            self.net.score_all, self.data.csr(), dense, k, self.net.device, 4096, progress=False
        )
        return to_frame(top, self.data.user_ids, self.data.item_ids).drop("source")

    def save(self, directory: str) -> None:
        """Write the model folder the pipeline writes (model.json + weights.pt)."""
        from negsamp.models import save_model

        save_model(self.net, directory)


_TRAIN = frozenset(C.TrainCfg.model_fields)


def fit(
    data: Interactions | Split,
    model: str | Mapping[str, Any] = "bpr",
    sampler: str | Mapping[str, Any] = "uniform",
    *,
    seed: int = 0,
    device: str = "cpu",
    **settings: Any,
) -> Model:
    """Train ``model`` with ``sampler``'s negatives, as the sample-negatives and train stages do.

    data: a :class:`Split` (trains on its train rows, ranks its validation rows after every
    epoch for early stopping and ``restore_best``) or :class:`Interactions` (trains on all
    of them for ``epochs``). model / sampler: a name, or a dict with ``name`` and settings.
    settings: the ``train`` section's keys (``epochs``, ``batch_size``, ``lr``, ``patience``,
    ``monitor``, ...) and any other key of the model's block (``factors``, ``loss``, ...);
    an unknown key is reported as params.yaml reports it.
    """
    train_keys = {k: v for k, v in settings.items() if k in _TRAIN}
    model_spec = {"name": model} if isinstance(model, str) else dict(model)
    model_spec |= {k: v for k, v in settings.items() if k not in _TRAIN}
    doc = {
        "base": {"seed": seed, "device": device},
        "sampler": _plugin(C.SamplerSection, sampler),
        "model": _plugin(C.ModelSection, model_spec),
        "train": {"checkpoint": False, **train_keys},
    }
    return fit_config(_validated(doc, "negsamp.fit()"), data)


def fit_config(
    cfg: C.Config,
    data: Interactions | Split,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> Model:
    """:func:`fit` for a validated configuration (``base``, ``sampler``, ``model``, ``train``
    and ``evaluate``'s validation settings are read): what ``negsamp tune`` runs per trial.
    ``on_epoch`` gets each epoch's history row (``valid_*`` included) as it ends."""
    from negsamp import train as trainer
    from negsamp.device import resolve_device
    from negsamp.samplers import build_sampler, no_exclusions
    from negsamp.samplers.pool import audit_pool, training_pool
    from negsamp.threads import set_threads

    parts = data if isinstance(data, Split) else None
    whole = data.data if isinstance(data, Split) else data
    frame = parts.train if parts is not None else whole.frame
    valid = parts.valid if parts is not None and parts.valid.height else None
    n_users, n_items = whole.n_users, whole.n_items
    seed = cfg.base.seed
    set_threads(cfg.base.threads)  # as every stage does (negsamp.stages.spec)

    def exclude() -> _CSR:
        how = cfg.sampler.exclude
        if how == "none":
            return no_exclusions(n_users, n_items)
        cols = ["user", "item", "count"]
        extra = [valid.select(cols)] if how == "train+valid" and valid is not None else []
        return whole.csr(pl.concat([frame.select(cols), *extra]))

    def pool() -> pl.DataFrame:
        s = cfg.sampler.active
        train = whole.csr(frame)
        avoid = exclude()
        drawn = training_pool(
            build_sampler(s, train), train, s.pool_width, s.pool_epochs, seed, exclude=avoid
        )
        audit_pool(drawn, avoid)
        return drawn

    net, history = trainer.train_configured(
        cfg,
        frame,
        n_users,
        n_items,
        resolve_device(cfg.base.device),
        valid=valid,
        pool=pool,
        exclude=exclude,
        test=parts.test if parts is not None and valid is not None else None,
        on_epoch=on_epoch,
    )
    return Model(net, cfg, whole, history)


def evaluate(model: Model, data: Split, **settings: Any) -> dict[str, float]:
    """The evaluate stage's headline metrics (metrics.json) of ``model`` on ``data``'s test rows.

    Sampled HR/NDCG (``n_eval_neg`` candidates per test row, drawn as the candidates stage
    draws them from the model's seed), their corrected estimates, full-ranking Recall/NDCG/...
    (train and validation items masked) and beyond-accuracy metrics, for every K of ``ks``.
    settings: the ``evaluate`` section's keys (``ks``, ``n_eval_neg``, ``bootstrap``, ...).
    """
    from negsamp.metrics.report import evaluate_model
    from negsamp.samplers.pool import eval_candidates

    doc: dict[str, Any] = {"evaluate": settings}
    if "ks" in settings:  # the registry's default metric names K=10: follow the user's ks
        doc["registry"] = {"metric": f"sampled_ndcg_{max(settings['ks'])}"}
    e = _validated(doc, "negsamp.evaluate()").evaluate
    seed = model.config.base.seed
    whole = data.data
    cols = ["user", "item", "count"]
    held = [data.train.select(cols), data.valid.select(cols)]
    train, seen = whole.csr(data.train), whole.csr(pl.concat(held))
    known = whole.csr(pl.concat([*held, data.test.select(cols)]))
    test = data.test.select("user", "item")
    cands = eval_candidates(known, test, e.n_eval_neg, seed)
    result = evaluate_model(model.net, cands, test, train, seen, e, seed, model.net.device)
    return result.metrics
