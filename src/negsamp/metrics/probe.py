"""Linear probes: what item embeddings encode about the items' attributes.

For each attribute family (``genre``, ``decade``, ...) a logistic regression predicts an
item's values from its learned embedding, trained on a seeded share of the items and
scored on the held-out rest: macro-F1 over the family's values. A family whose items all
have one value (``decade``) is one multinomial classification; a multi-valued one
(``genre``) is one binary classification per value (one-vs-rest, threshold 0.5). Every
probe uses balanced class weights, so rare values count.

The same probe runs on two baselines: random Gaussian embeddings of the same shape (what
no learning gives) and popularity alone (the item's log training count, one feature: what
a model that learned only popularity gives). Features are standardized on the training
items. Only items with at least ``min_count`` training positives are probed (the rest
keep their initial embedding); values with fewer than 2 probed items are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl


def _standardize(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def _macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over the columns of 0/1 matrices [n, k]."""
    tp = (truth & pred).sum(axis=0)
    denom = truth.sum(axis=0) + pred.sum(axis=0)
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    return float(f1.mean())


def probe_f1(
    x: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int
) -> float:
    """Macro-F1 on ``test`` items of probes fit on ``train`` items.

    x: float [n, d] features; labels: bool [n, k] (one True per row: multinomial, else
    one-vs-rest); train, test: int item rows.
    """
    from sklearn.linear_model import LogisticRegression

    x = _standardize(np.asarray(x, np.float64), train)
    labels = labels[:, labels[train].any(axis=0)]  # values the probe can learn
    single = bool((labels.sum(axis=1) == 1).all())
    kw: dict[str, Any] = {"class_weight": "balanced", "max_iter": 1000, "random_state": seed}
    if single:
        y = labels.argmax(axis=1)
        clf = LogisticRegression(**kw).fit(x[train], y[train])
        pred = np.zeros_like(labels[test])
        pred[np.arange(test.size), clf.predict(x[test])] = True
        return _macro_f1(labels[test], pred)
    pred = np.zeros_like(labels[test])
    for j in range(labels.shape[1]):  # one probe per value: a loop over values, not items
        y = labels[train, j]
        if y.all() or not y.any():
            pred[:, j] = y[0]
            continue
        pred[:, j] = LogisticRegression(**kw).fit(x[train], y).predict(x[test])
    return _macro_f1(labels[test], pred)


def probe(
    embeddings: np.ndarray,
    attributes: pl.DataFrame,
    item_counts: np.ndarray,
    seed: int,
    *,
    min_count: int = 1,
    test_share: float = 0.3,
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, report): per family ``probe_<family>_f1`` (the embeddings),
    ``probe_<family>_f1_random`` and ``probe_<family>_f1_popularity`` (the baselines).

    embeddings: float [n_items, d]; attributes: item, family, value (ingest's
    item_attributes); item_counts: int [n_items] training positives per item.
    """
    rng = np.random.default_rng(seed)
    n_items, d = embeddings.shape
    random = rng.standard_normal((n_items, d))
    pop = np.log1p(np.asarray(item_counts, np.float64))[:, None]
    metrics: dict[str, float] = {}
    report: dict[str, Any] = {"min_count": min_count, "test_share": test_share, "families": {}}
    for family in attributes["family"].unique().sort().to_list():
        rows = attributes.filter(pl.col("family") == family)
        items = np.unique(rows["item"].to_numpy())
        items = items[
            (items < n_items) & (item_counts[np.minimum(items, n_items - 1)] >= min_count)
        ]
        names = rows["value"].unique().sort().to_list()
        code = rows["value"].cast(pl.Enum(names)).to_physical().to_numpy()
        at = np.searchsorted(items, rows["item"].to_numpy())
        ok = (at < items.size) & (items[np.minimum(at, items.size - 1)] == rows["item"].to_numpy())
        labels = np.zeros((items.size, len(names)), bool)
        labels[at[ok], code[ok]] = True
        labels = labels[:, labels.sum(axis=0) >= 2]
        keep = labels.any(axis=1)
        items, labels = items[keep], labels[keep]
        if items.size < 10 or labels.shape[1] < 2:
            report["families"][family] = {
                "skipped": f"{items.size} items, {labels.shape[1]} values"
            }
            continue
        perm = rng.permutation(items.size)
        n_test = max(1, int(round(test_share * items.size)))
        test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        got = {
            "": probe_f1(embeddings[items], labels, train, test, seed),
            "_random": probe_f1(random[items], labels, train, test, seed),
            "_popularity": probe_f1(pop[items], labels, train, test, seed),
        }
        for suffix, value in got.items():
            metrics[f"probe_{family}_f1{suffix}"] = value
        report["families"][family] = {
            "items": int(items.size),
            "train_items": int(train.size),
            "test_items": int(test.size),
            "values": int(labels.shape[1]),
            "multi_valued": bool((labels.sum(axis=1) > 1).any()),
            "f1": got[""],
            "f1_random": got["_random"],
            "f1_popularity": got["_popularity"],
        }
    return metrics, report
