"""The methods `bench/quality.py` compares negsamp with, as scorers on negsamp's split.

Each peer is fitted on the training positives ``X`` (users x items, CSR) whose values are
the confidence it is given: the event count, times negsamp's recency weight when the run
offers recency (:func:`negsamp.train.recency_weights`, the weights negsamp's models get).
Peers that take no per-interaction weight (popularity, implicit's BPR: it samples the
nonzero cells uniformly) ignore the values. Every peer returns a :class:`Scorer` with the
two callables negsamp's evaluation uses (``score(users, items)`` and ``score_all(users)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


@dataclass(frozen=True)
class Scorer:
    """``score_all``: users int64 [B] -> float32 [B, n_items], a fresh tensor."""

    score_all: Callable[[torch.Tensor], torch.Tensor]

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.score_all(users).gather(1, items)


def factors(uf: np.ndarray, itf: np.ndarray) -> Scorer:
    u, i = torch.as_tensor(np.ascontiguousarray(uf)), torch.as_tensor(np.ascontiguousarray(itf))
    return Scorer(lambda users: u[users] @ i.T)


def popularity(x: sp.csr_matrix, seed: int, **_: Any) -> Scorer:
    pop = torch.as_tensor(np.diff(x.tocsc().indptr).astype(np.float32))
    return Scorer(lambda users: pop.expand(len(users), -1).clone())


def ease(x: sp.csr_matrix, seed: int, lam: float) -> Scorer:
    """EASE^R (Steck 2019): B = I - P / diag(P), P = (X^T X + lam I)^-1; diag(B) = 0.

    X's values are the confidence (1, or the recency weight); a user's scores are x_u B.
    """
    g = torch.as_tensor((x.T @ x).toarray(), dtype=torch.float64)
    g.diagonal().add_(lam)
    p = torch.cholesky_inverse(torch.linalg.cholesky(g))  # G is symmetric positive definite
    b = -p / p.diagonal()[None, :]
    b.diagonal().zero_()
    bt = b.float()
    xt = x.astype(np.float32).tocsr()

    def score_all(users: torch.Tensor) -> torch.Tensor:
        rows = torch.as_tensor(xt[users.numpy()].toarray())
        return rows @ bt

    return Scorer(score_all)


def implicit_als(x: sp.csr_matrix, seed: int, factors_: int, reg: float, alpha: float) -> Scorer:
    from implicit.cpu.als import AlternatingLeastSquares

    m = AlternatingLeastSquares(
        factors=factors_, regularization=reg, alpha=alpha, random_state=seed, num_threads=1
    )
    m.fit(x, show_progress=False)
    return factors(m.user_factors, m.item_factors)


def _gradient(kind: str) -> Callable[..., Scorer]:
    """implicit's BPR or LMF (the same settings: factors, learning rate, L2, iterations)."""

    def fit(x: sp.csr_matrix, seed: int, factors_: int, lr: float, reg: float, iterations: int) -> Scorer:  # fmt: skip
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.cpu.lmf import LogisticMatrixFactorization

        cls = {"bpr": BayesianPersonalizedRanking, "lmf": LogisticMatrixFactorization}[kind]
        m = cls(
            factors=factors_,
            learning_rate=lr,
            regularization=reg,
            iterations=iterations,
            random_state=seed,
            num_threads=1,
        )
        m.fit(x, show_progress=False)
        return factors(m.user_factors, m.item_factors)

    return fit


implicit_bpr, implicit_lmf = _gradient("bpr"), _gradient("lmf")


def _grid(keys: tuple[str, ...], *rows: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(zip(keys, r, strict=True)) for r in rows]


_SGD = ("factors_", "lr", "reg", "iterations")

# name -> (fit function, takes per-interaction weights, grid of settings: same length each,
# the budget takes the first n). Centred on implicit's defaults and the tuned ALS.
PEERS: dict[str, tuple[Callable[..., Scorer], bool, list[dict[str, Any]]]] = {
    "popularity": (popularity, False, [{}]),
    "implicit ALS": (implicit_als, True, _grid(("factors_", "reg", "alpha"),
        (128, 50.0, 20.0), (64, 10.0, 5.0), (128, 10.0, 20.0), (256, 100.0, 20.0),
        (128, 50.0, 5.0), (64, 50.0, 40.0))),
    "implicit BPR": (implicit_bpr, False, _grid(_SGD,
        (64, 0.01, 0.001, 100), (128, 0.05, 0.01, 100), (128, 0.01, 0.001, 200),
        (64, 0.05, 0.001, 200), (256, 0.01, 0.01, 100), (64, 0.1, 0.01, 100))),
    "implicit LMF": (implicit_lmf, True, _grid(_SGD,
        (30, 1.0, 0.6, 30), (64, 1.0, 1.0, 30), (64, 0.5, 0.6, 60), (128, 1.0, 2.0, 30),
        (30, 2.0, 0.6, 30), (64, 1.0, 0.3, 30))),
    "EASE": (ease, True, _grid(("lam",), (200.0,), (500.0,), (50.0,), (1000.0,), (100.0,), (2000.0,))),
}  # fmt: skip
