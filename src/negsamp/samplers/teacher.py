"""``teacher_hard``: a hard-negative pool mined offline from a previous model.

For each user the teacher scores the whole catalog; the user's positives (of the
``exclude`` CSR) are removed, the ``skip_top`` best-scored non-positives are skipped as
likely false negatives, and the next ``top_k`` form the user's mined list. A row then
draws ``n_neg`` items uniformly from its user's list (distinct without replacement).

The teacher is only a callable ``score_all(users) -> [len(users), n_items]`` (numpy or
torch); the stage resolves ``teacher: champion | <model dir>`` into it. Users are mined
in fixed, id-aligned chunks, so the scores (and the pool) do not depend on how the
rows were batched or sharded. Ties in score are broken by item id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from negsamp.interactions import Interactions
from negsamp.samplers import register_sampler
from negsamp.samplers.exact import DrawStats, capacity_error, floyd

ScoreAll = Callable[[np.ndarray], Any]  # int64 [U] -> float [U, n_items] (numpy or torch)
MINE_CELLS = 1 << 22  # scores held at once while mining (part of the format: the chunking)


ROWS = 16  # rows of a chunk's scores copied (and masked) at once: bounds the extra memory


def _numpy(x: Any) -> np.ndarray:
    """The scores as a numpy array (a view where possible: the caller's array is only read)."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _top_m(s: np.ndarray, m: int) -> np.ndarray:
    """int64 [U, m]: per row the m best-scored columns, ties at the cut going to smaller ids."""
    import torch  # lazily: importing the samplers should not pay for torch

    k = min(m + 1, s.shape[1])  # one more: a tie across the cut shows as value m+1 == value m
    top = torch.topk(torch.from_numpy(s), k, dim=1, sorted=True)  # O(U * m) memory
    part, vals = top.indices.numpy()[:, :m], top.values.numpy()
    cut = vals[:, m - 1 : m]
    tied = np.flatnonzero(vals[:, m] == cut[:, 0]) if k > m else np.zeros(0, np.int64)
    if tied.size:  # more items reach the cut than fit: the smaller ids among the tied
        st, c = s[tied], cut[tied]
        eq = st == c
        keep = (st > c) | (eq & (np.cumsum(eq, axis=1) <= m - (st > c).sum(1, keepdims=True)))
        part = part.copy()
        part[tied] = np.nonzero(keep)[1].reshape(tied.size, m)
    return part


def _rank_rows(
    s: np.ndarray, exclude: Interactions, users: np.ndarray, m: int, skip_top: int
) -> np.ndarray:
    """int64 [U, m - skip_top]: each row's best non-positives past ``skip_top`` (score desc,
    then id). ``s`` is a copy of the rows' scores (it is masked in place)."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: nan, as wanted
        finite = np.isfinite(s.sum(dtype=np.float64))  # one pass; nan / inf are rare
    if not finite:
        low = np.finfo(s.dtype).max
        np.nan_to_num(s, copy=False, nan=-low, posinf=low, neginf=-low)
    deg = exclude.indptr[users + 1] - exclude.indptr[users]
    row = np.repeat(np.arange(users.size), deg)
    at = (
        np.arange(row.size)
        - np.repeat(np.cumsum(deg) - deg, deg)
        + np.repeat(exclude.indptr[users], deg)
    )
    s[row, exclude.indices[at]] = -np.inf  # strictly below every non-positive
    part = _top_m(s, m)
    order = np.lexsort((part, -np.take_along_axis(s, part, axis=1)))  # score desc, then id
    return np.take_along_axis(part, order, axis=1)[:, skip_top:]


def mine_hard_negatives(
    score_all: ScoreAll, exclude: Interactions, users: np.ndarray, top_k: int, skip_top: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The mined lists of ``users`` (scored in one call to ``score_all``).

    Returns mined int32 [U, top_k] (best first; entries past ``valid`` are padding) and
    valid int64 [U] = min(top_k, non-positives - skip_top), clipped at 0. The scores are
    read, never written: :data:`ROWS` rows at a time are copied and masked, so mining
    holds the teacher's scores plus that much.
    """
    users = np.asarray(users, np.int64)
    n = exclude.n_items
    s = _numpy(score_all(users))
    if s.shape != (users.size, n):
        raise ValueError(f"score_all returned shape {s.shape}, expected {(users.size, n)}")
    dtype = np.float64 if s.dtype == np.float64 else np.float32
    m = min(skip_top + top_k, n)
    mined = np.zeros((users.size, top_k), np.int32)
    for r in range(0, users.size, ROWS):  # slices of rows, not a loop per user
        part = _rank_rows(
            np.array(s[r : r + ROWS], dtype), exclude, users[r : r + ROWS], m, skip_top
        )
        mined[r : r + ROWS, : part.shape[1]] = part
    deg = exclude.indptr[users + 1] - exclude.indptr[users]
    valid = np.clip(n - deg - skip_top, 0, top_k)
    return mined, valid


@register_sampler("teacher_hard")
class TeacherHardSampler:
    def __init__(
        self, cfg: Any, train: Interactions, score_all: ScoreAll | None = None, **_: Any
    ) -> None:
        if score_all is None:
            raise ValueError(
                f"sampler teacher_hard needs the teacher's score_all: the stage must load "
                f"teacher={cfg.teacher!r} (champion or a saved model dir) and pass "
                "build_sampler(cfg, train, score_all=model_score_all)"
            )
        self.cfg, self.score_all = cfg, score_all
        self.replace = bool(getattr(cfg, "replace", True))
        self.chunk = max(1, min(256, MINE_CELLS // train.n_items))
        self.stats = DrawStats()
        self._store: dict[int, tuple[Interactions, np.ndarray, np.ndarray]] = {}

    def mined(self, exclude: Interactions, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mined lists of ``users`` (int32 [B, top_k], valid int64 [B]), mined once per chunk."""
        users = np.asarray(users, np.int64)
        lists, valid = self._mine(exclude, users)
        return lists[users], valid[users]

    def _mine(self, exclude: Interactions, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every user's lists and valid counts, with the chunks of ``users`` mined."""
        ref, lists, valid = self._store.get(id(exclude), (None, None, None))
        if ref is not exclude:
            lists = np.zeros((exclude.n_users, self.cfg.top_k), np.int32)
            valid = np.full(exclude.n_users, -1, np.int64)
            self._store[id(exclude)] = (exclude, lists, valid)
        need = np.unique(users[valid[users] < 0] // self.chunk)
        for c in need.tolist():  # one call per chunk of `chunk` users, never per user
            uu = np.arange(c * self.chunk, min((c + 1) * self.chunk, exclude.n_users))
            lists[uu], valid[uu] = mine_hard_negatives(
                self.score_all, exclude, uu, self.cfg.top_k, self.cfg.skip_top
            )
        return lists, valid

    def sample(
        self,
        exclude: Interactions,
        users: np.ndarray,
        pos_items: np.ndarray,
        n_neg: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """int32 [B, n_neg]: uniform draws from each user's mined list (never a positive)."""
        users = np.asarray(users, np.int64)
        lists, every = self._mine(exclude, users)
        valid = every[users]
        need = 1 if self.replace else n_neg
        if (valid < need).any():
            capacity_error(
                users,
                valid,
                need,
                exclude.n_items,
                "teacher_hard",
                setting="sampler.n_neg",
                fix="raise sampler.teacher_hard.top_k or lower skip_top",
                empty="their mined list is empty: raise sampler.teacher_hard.top_k or lower "
                "skip_top",
            )
        if self.replace:
            idx = (rng.random((users.size, n_neg)) * valid[:, None]).astype(np.int64)
        else:
            idx = floyd(valid, n_neg, rng)
        self.stats.draws += idx.size
        # one gather of the drawn cells (not a copy of every row's whole list first)
        idx += (users * lists.shape[1])[:, None]
        return np.take(lists.reshape(-1), idx)

    def target(self, exclude: Interactions, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, np.int64)
        uu, m = np.unique(users, return_counts=True)
        lists, valid = self.mined(exclude, uu)
        keep = np.arange(lists.shape[1])[None, :] < valid[:, None]
        w = np.broadcast_to((m / np.maximum(valid, 1))[:, None], lists.shape)
        q = np.bincount(lists[keep], weights=w[keep], minlength=exclude.n_items)
        return q / q.sum()

    def describe(self) -> dict[str, Any]:
        mined = [v[v >= 0] for _, _, v in self._store.values()]
        v = np.concatenate(mined) if mined else np.zeros(0)
        return {
            "method": "teacher top-k non-positives after skipping skip_top, uniform within",
            "teacher": self.cfg.teacher,
            "top_k": self.cfg.top_k,
            "skip_top": self.cfg.skip_top,
            "replace": self.replace,
            "users_mined": int(v.size),
            "mean_list_length": float(v.mean()) if v.size else 0.0,
        }
