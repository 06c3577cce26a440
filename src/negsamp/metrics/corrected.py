"""Full-ranking metrics estimated from sampled ranks (Krichene & Rendle, KDD 2020).

A held-out item at full rank r among the user's N irrelevant items (0 <= r <= N) gets
sampled rank r~ among m candidates drawn uniformly without replacement from those N,
so r~ | r ~ Hypergeometric(N, r, m). The raw sampled metric applies M to r~ as if it
were r; that is inconsistent: two models can swap order. Estimators of mean M(r):

- ``rescaled``: M(r~ * N / m), the metric at the maximum-likelihood full rank.
- ``bv`` (bias-variance trade-off): the table x[r~] minimising, under a prior p(r)
  (uniform here), sum_r p(r) [(E[x(r~)|r] - M(r))^2 + gamma Var(x(r~)|r)], whose
  closed form is x = [(1 - gamma) A'DA + gamma diag(A'p)]^-1 A'D M, A[r, r~] = P(r~|r).
  gamma = 1 gives the posterior mean E[M(r) | r~]; gamma = 0 is the least-squares,
  minimal-bias "CLS" estimator (solved by lstsq), nearly unbiased and very noisy.

N differs per user (catalog minus the user's positives and held-out items): rows are
grouped by N, at most ``max_groups`` groups of similar N, each solved once at its median.
"""

from __future__ import annotations

import numpy as np
import torch

from negsamp.metrics.ranking import full_row_metrics
from negsamp.metrics_names import CORRECTED, corrected, full

MAX_GROUPS = 8


def targets(ks: tuple[int, ...], estimator: str) -> list[tuple[str, str]]:
    """(full_ name estimated, estimate's name) for every corrected metric."""
    pairs = [(full(m, k), corrected(estimator, m, k)) for k in ks for m in CORRECTED]
    return pairs + [(full("mrr"), corrected(estimator, "mrr"))]


def transition(n_neg: int, m: int) -> np.ndarray:
    """float64 [N + 1, m + 1]: P(sampled rank | full rank), hypergeometric.

    Row r: m of N irrelevant items drawn without replacement, r of which beat the item.
    Probabilities below 1e-130 are set to 0 (they would make later products subnormal,
    which is slow and changes nothing).
    """
    if n_neg < m:
        raise ValueError(f"{m} sampled candidates cannot come from {n_neg} irrelevant items")
    lf = torch.lgamma(torch.arange(1, n_neg + 2, dtype=torch.float64)).numpy()  # log k!
    r, k = np.arange(n_neg + 1), np.arange(m + 1)
    above = r[:, None] - k[None, :]  # beaters not drawn: r - k
    below = (n_neg - r)[:, None] - (m - k)[None, :]  # non-beaters not drawn
    ok = (above >= 0) & (below >= 0)
    logp = (
        (lf[r] + lf[n_neg - r])[:, None]
        - (lf[k] + lf[m - k])[None, :]
        - lf[np.maximum(above, 0)]
        - lf[np.maximum(below, 0)]
        - (lf[n_neg] - lf[m] - lf[n_neg - m])
    )
    return np.where(ok & (logp > -300.0), np.exp(np.minimum(logp, 0.0)), 0.0)


def kr_table(metric: np.ndarray, n_neg: int, m: int, gamma: float) -> np.ndarray:
    """float64 [m + 1, T]: the estimate for each sampled rank, for T metrics at once.

    metric: float64 [N + 1, T], M(r) of each metric at every full rank r. The algebra runs
    in torch (its BLAS keeps its speed on a busy machine; numpy's threaded one may not).
    """
    a = torch.from_numpy(transition(n_neg, m))
    target = torch.from_numpy(np.ascontiguousarray(metric, np.float64))
    if gamma <= 0.0:  # least squares; uniform prior weights cancel
        return torch.linalg.lstsq(a, target, driver="gelsd").solution.numpy()
    lhs = (1.0 - gamma) * (a.T @ a) + gamma * torch.diag(a.sum(0))
    return torch.linalg.solve(lhs, a.T @ target).numpy()


def _groups(n_neg: np.ndarray, max_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(group of each row int64 [R], representative N of each group int64 [G])."""
    values = np.unique(n_neg)
    if values.size <= max_groups:
        return np.searchsorted(values, n_neg), values
    edges = np.unique(np.quantile(n_neg, np.linspace(0, 1, max_groups + 1))[1:-1])
    label = np.searchsorted(edges, n_neg, side="right")
    reps = [
        np.median(n_neg[label == g]) if (label == g).any() else 0 for g in range(edges.size + 1)
    ]
    return label, np.round(reps).astype(np.int64)


def rescaled_rows(
    rank: np.ndarray, n_neg: np.ndarray, m: int, ks: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """float64 [R] per ``rescaled_`` metric: the full metric at rank r~ * N / m."""
    vals = full_row_metrics(np.asarray(rank) * (np.asarray(n_neg) / m), ks)
    return {name: vals[src] for src, name in targets(ks, "rescaled")}


def kr_rows(
    rank: np.ndarray,
    n_neg: np.ndarray,
    m: int,
    ks: tuple[int, ...],
    gamma: float,
    estimator: str = "bv",
    max_groups: int = MAX_GROUPS,
) -> dict[str, np.ndarray]:
    """float64 [R] per ``<estimator>_`` metric: Krichene & Rendle's corrected estimate.

    rank: int [R] sampled ranks (0..m); n_neg: int [R] irrelevant items of the row's user.
    """
    rank, n_neg = np.asarray(rank, np.int64), np.asarray(n_neg, np.int64)
    pairs = targets(ks, estimator)
    out = np.empty((rank.size, len(pairs)))
    label, reps = _groups(n_neg, max_groups)
    for g, n in enumerate(reps):
        sel = label == g
        if not sel.any():
            continue
        vals = full_row_metrics(np.arange(n + 1), ks)
        table = kr_table(np.stack([vals[src] for src, _ in pairs], 1), int(n), m, gamma)
        out[sel] = table[rank[sel]]
    return {name: out[:, j] for j, (_, name) in enumerate(pairs)}
