"""The served model (``TopKRecommender``) on the tiny world, without an MLflow round trip."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import polars as pl

from negsamp.interactions import Interactions
from negsamp.mlops.pyfunc import COLUMNS, TopKRecommender, signature
from negsamp.paths import Paths
from tests.unit.mlops import world


def _served(paths: Paths, **artifacts: str) -> TopKRecommender:
    art = {
        "model": str(paths.model_dir),
        "user_ids": str(paths.user_ids),
        "item_ids": str(paths.item_ids),
    } | artifacts
    model = TopKRecommender()
    model.load_context(SimpleNamespace(artifacts=art))
    return model


def _pairs(df: pl.DataFrame) -> set[tuple[int, str]]:
    return {(world.RAW_USERS[u], world.RAW_ITEMS[i]) for u, i in df.select("user", "item").rows()}


def test_serving_never_returns_an_item_the_user_has_anywhere_in_the_log(tmp_path) -> None:
    """Issue #13: the validation and test items (each user's two latest) came back at ranks
    1 and 2 when serving masked only the training split."""
    paths = world.build(tmp_path, world.config())
    served = _served(paths, interactions=str(paths.interactions))
    k = world.N_ITEMS - world.PER_USER  # every unseen item: a held-out one would have to show
    users = [world.RAW_USERS[u] for u in range(world.N_USERS)]
    out = served.predict(None, pd.DataFrame({"user": users}), params={"k": k})
    assert list(out.columns) == list(COLUMNS)
    assert out.groupby("user").size().to_dict() == dict.fromkeys(users, k)
    got = set(zip(out["user"], out["item"], strict=True))
    log_ = pl.read_parquet(paths.interactions)
    assert not got & _pairs(log_)
    held_out = _pairs(pl.concat([pl.read_parquet(paths.valid), pl.read_parquet(paths.test)]))
    # the model alone would rank them: masking only training lets them through
    old = _served(paths, train=str(paths.train))
    before = old.predict(None, pd.DataFrame({"user": users}), params={"k": k})
    assert set(zip(before["user"], before["item"], strict=True)) & held_out
    assert (out["source"] == "model").all() and out["known_user"].all()
    assert np.isfinite(out["score"]).all()


def test_unknown_users_get_popularity_with_no_score_and_say_so(tmp_path) -> None:
    paths = world.build(tmp_path, world.config())
    served = _served(paths, interactions=str(paths.interactions))
    unknown, known = 424242, world.RAW_USERS[2]
    out = served.predict(None, pd.DataFrame({"user": [unknown, known]}), params={"k": 4})
    cold, warm = out[out["user"] == unknown], out[out["user"] == known]
    log_ = pl.read_parquet(paths.interactions)
    counts = Interactions.from_frame(log_, world.N_USERS, world.N_ITEMS).item_counts()
    top = np.argsort(-counts, kind="stable")[:4]
    assert cold["item"].tolist() == [world.RAW_ITEMS[j] for j in top]  # the log's most popular
    assert cold["score"].isna().all()  # a count is not on the model's scale: no score
    assert (cold["source"] == "popularity").all() and not cold["known_user"].any()
    assert (warm["source"] == "model").all() and np.isfinite(warm["score"]).all()
    assert out["user"].tolist() == [unknown] * 4 + [known] * 4  # input order kept


def test_signature_names_every_column_and_allows_a_missing_score(tmp_path) -> None:
    paths = world.build(tmp_path, world.config())
    outputs = {c.name: c for c in signature(paths).outputs.inputs}
    assert tuple(outputs) == COLUMNS
    assert not outputs["score"].required


def test_a_served_sasrec_answers_a_history_and_never_returns_an_item_of_it(tmp_path) -> None:
    """Issue #19: the request carries the user's recent items; the answer follows them and
    never holds one of them (nor, for a known user, an item of the log)."""
    import torch

    from negsamp import sequential
    from negsamp.config import TrainCfg, UniformSamplerCfg
    from negsamp.models import build_model, model_config, save_model

    paths = world.build(tmp_path, world.config())
    cfg = model_config({"name": "sasrec", "hidden": 8, "num_blocks": 1, "max_len": 4})
    model = build_model(cfg, world.N_USERS, world.N_ITEMS, torch.Generator().manual_seed(0))
    train = pl.read_parquet(paths.train)
    seen = Interactions.from_frame(train, world.N_USERS, world.N_ITEMS)
    model.set_history(sequential.histories(train, world.N_USERS, 4, world.N_ITEMS))
    sequential.fit(
        model,
        sequential.windows(train, 4, world.N_ITEMS),
        TrainCfg(epochs=2, patience=0, checkpoint=False),
        0,
        torch.device("cpu"),
        sampler=UniformSamplerCfg(n_neg=2),
        exclude=seen,
        item_counts=seen.item_counts(),
    )
    save_model(model, paths.model_dir)
    served = _served(paths, interactions=str(paths.interactions))
    user, stranger = world.RAW_USERS[3], 424242
    first, second = ["i01", "i07", "i12"], ["i20", "i25", "i03", "i29", "i14"]
    request = pd.DataFrame(
        {"user": [user, user, stranger], "history": [first, second, ["i05", "nope", "i09"]]}
    )
    out = served.predict(None, request, params={"k": world.N_ITEMS})
    logged = {i for u, i in _pairs(pl.read_parquet(paths.interactions)) if u == user}
    starts = [0, *(np.flatnonzero(np.diff(out["rank"].to_numpy()) < 0) + 1), len(out)]
    by_row = [out.iloc[a:b] for a, b in zip(starts, starts[1:], strict=False)]
    assert len(by_row) == 3
    for got, hist in zip(by_row, [first, second, ["i05", "i09"]], strict=True):
        assert not set(got["item"]) & set(hist)
        assert (got["source"] == "model").all() and np.isfinite(got["score"]).all()
    for got in by_row[:2]:  # a known user: nothing of the log either
        assert not set(got["item"]) & logged
        assert len(got) == world.N_ITEMS - len(logged | set(first if got is by_row[0] else second))
    assert not by_row[2]["known_user"].any() and len(by_row[2]) == world.N_ITEMS - 2
    # the answer follows the history: the same user, two histories, two rankings
    common = sorted(set(by_row[0]["item"]) & set(by_row[1]["item"]))
    score = [g.set_index("item").loc[common, "score"].to_numpy() for g in by_row[:2]]
    assert not np.allclose(score[0], score[1])
