"""The scoring engine of evaluation: where each held-out item ranks, in torch, batched.

Sampled protocol (NCF): the held-out item is ranked among its fixed candidates; ties
count against the model (rank = candidates scoring >= the item), so a constant scorer
gets HR@K = 0, never 1.

Full ranking: each held-out item is ranked against every item the user has not trained
on (training and validation positives are masked), again pessimistically, one batch of
users at a time so memory stays at ``batch x n_items`` scores. Ranks come from counting
(``scores >= target``), never from a sort; the top-K lists the beyond-accuracy metrics
need come from ``torch.topk``. NaN scores rank last, like the lowest finite score.

What the metrics are computed from lives in :mod:`negsamp.metrics`; this module only
touches the model (``score`` / ``score_all`` callables) and the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from negsamp.interactions import Interactions

Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AllScorer = Callable[[torch.Tensor], torch.Tensor]

_LOW = torch.finfo(torch.float32).min  # NaN and -inf scores become this: below any real score
_HIGH = torch.finfo(torch.float32).max


def _finite(s: torch.Tensor) -> torch.Tensor:
    """float32 scores with NaN/-inf -> lowest finite and +inf -> highest (in place)."""
    return torch.nan_to_num_(s.float().contiguous(), nan=_LOW, posinf=_HIGH, neginf=_LOW)


_WORD = 8 * 255  # bools per int64 word x words summed before a byte lane could overflow
_SHIFTS = tuple(range(0, 64, 8))


def _count_ge(s: torch.Tensor, t: torch.Tensor, work: torch.Tensor | None = None) -> torch.Tensor:
    """int64 [B]: entries of each row of ``s`` [B, n] that are >= ``t`` [B].

    Summing a bool tensor is slow on CPU (about 7 ns an element); instead the comparison
    is written into a zero-padded bool buffer read as int64 words, so one integer add
    counts eight entries at once (one byte lane each, at most 255 words per partial sum,
    so no lane overflows), and the lanes are added at the end. ``work``: a reusable bool
    buffer [>= B, width] (width a multiple of ``_WORD``, >= n) whose columns past n are False.
    """
    b, n = s.shape
    width = -(-n // _WORD) * _WORD
    if work is None or work.shape[1] != width or work.shape[0] < b:
        work = torch.zeros((b, width), dtype=torch.bool, device=s.device)
    buf = work[:b]
    torch.ge(s, t[:, None], out=buf[:, :n])
    partial = buf.view(torch.uint8).view(torch.int64).view(b, -1, 255).sum(2)  # [b, chunks]
    shifts = torch.tensor(_SHIFTS, dtype=torch.int64, device=s.device)
    return ((partial[..., None] >> shifts) & 0xFF).sum((1, 2))


def _workspace(b: int, n: int, device: torch.device | str) -> torch.Tensor:
    """The bool buffer :func:`_count_ge` reuses across batches (its padding stays False)."""
    return torch.zeros((b, -(-n // _WORD) * _WORD), dtype=torch.bool, device=device)


def _flat_positives(pos: Interactions, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row in ``users``, item) of every positive of ``users``: int64 [nnz_batch] each."""
    users = np.asarray(users, np.int64)
    starts, ends = pos.indptr[users], pos.indptr[users + 1]
    lens = ends - starts
    rows = np.repeat(np.arange(users.size), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    return rows, pos.indices[np.repeat(starts, lens) + offs].astype(np.int64)


def dense_mask(pos: Interactions, users: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """bool [B, n_items]: True where (users[b], i) is a positive."""
    rows, cols = _flat_positives(pos, users)
    m = torch.zeros((len(users), pos.n_items), dtype=torch.bool, device=device)
    m[torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device)] = True
    return m


def sampled_ranks(
    score: Scorer, cands: pl.DataFrame, device: torch.device | str, batch: int
) -> np.ndarray:
    """int64 [n_rows]: pessimistic rank of each held-out item among its candidates.

    cands: user, item (the held-out item), candidates array[int, m] per row.
    """
    users = cands["user"].to_numpy().astype(np.int64)
    items = cands["item"].to_numpy().astype(np.int64)
    negs = cands["candidates"].to_numpy().astype(np.int64)
    out = np.empty(users.size, np.int64)
    with torch.no_grad():
        for lo in range(0, users.size, batch):
            sl = slice(lo, lo + batch)
            u = torch.as_tensor(users[sl], device=device)
            it = torch.as_tensor(np.concatenate([items[sl, None], negs[sl]], axis=1), device=device)
            s = _finite(score(u, it))
            out[sl] = (s[:, 1:] >= s[:, :1]).sum(1).cpu().numpy()
    return out


@dataclass(frozen=True)
class FullRanking:
    """Where every held-out row ranks among all of its user's candidate items.

    Rows are in the order of the ``test`` frame given to :func:`full_ranking`.

    users:        int64 [U] evaluated users, ascending
    n_candidates: int64 [U] items each is ranked against (catalog minus masked positives)
    top:          int32 [U, kmax] its best unmasked items, best first; -1 pads past n_candidates
    row_user:     int64 [R] user of each held-out row
    row_item:     int64 [R] held-out item of each row
    below:        int64 [R] non-held-out candidates scoring >= the row's item: its rank among
                  the irrelevant items (what a sampled rank estimates), ties against the model
    position:     int64 [R] 0-based position in the user's pessimistic full list; the
                  user's other held-out items above it count too, and held-out items that
                  tie take consecutive positions
    """

    users: np.ndarray
    n_candidates: np.ndarray
    top: np.ndarray
    row_user: np.ndarray
    row_item: np.ndarray
    below: np.ndarray
    position: np.ndarray

    def n_negatives(self) -> np.ndarray:
        """int64 [U]: irrelevant candidates per user (candidates minus its held-out items)."""
        held = np.bincount(np.searchsorted(self.users, self.row_user), minlength=self.users.size)
        return self.n_candidates - held


def held_out(mask: Interactions, test: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) int64 [R] of the held-out rows; a ValueError if one is masked."""
    row_user = test["user"].to_numpy().astype(np.int64)
    row_item = test["item"].to_numpy().astype(np.int64)
    if row_user.size and mask.contains(row_user, row_item).any():
        bad = np.flatnonzero(mask.contains(row_user, row_item))[:5]
        raise ValueError(
            f"held-out rows {bad.tolist()} (user, item) are also training/validation positives; "
            "a held-out item must not be masked (re-run split)"
        )
    return row_user, row_item


def full_ranking(
    score_all: AllScorer,
    mask: Interactions,
    test: pl.DataFrame,
    kmax: int,
    device: torch.device | str,
    batch: int,
) -> FullRanking:
    """Rank every held-out (user, item) of ``test`` against all items not in ``mask``.

    score_all: users int64 [B] -> float [B, n_items], a fresh tensor (it is edited in place).
    mask: the positives never recommended (training and validation). ``batch`` users are
    scored at once: peak memory is about ``batch * n_items * 6`` bytes on ``device``.
    """
    row_user, row_item = held_out(mask, test)
    order = np.argsort(row_user, kind="stable")
    ru, ri = row_user[order], row_item[order]
    users, starts, counts = np.unique(ru, return_index=True, return_counts=True)
    n_rows, n_users, n_items = ru.size, users.size, mask.n_items
    kk = min(kmax, n_items)
    top = np.full((n_users, kmax), -1, np.int32)
    target = np.empty(n_rows, np.float32)
    ge = np.empty(n_rows, np.int64)
    quiet = {"disable": True} if n_users < 20 * batch else {}  # else TQDM_DISABLE decides
    bar = tqdm(total=n_users, desc="full ranking", unit="user", **quiet)
    work = _workspace(min(batch, max(n_users, 1)), n_items, device)
    with torch.no_grad(), bar:
        for lo in range(0, n_users, batch):
            ub = users[lo : lo + batch]
            r0 = starts[lo]
            r1 = starts[lo + batch] if lo + batch < n_users else n_rows
            s = score_all(torch.as_tensor(ub, device=device)).float().contiguous()
            if not torch.isfinite(s.sum()):  # one cheap reduction; rare NaN/inf: clean them
                s = _finite(s)
            rows, cols = _flat_positives(mask, ub)
            s.view(-1)[torch.as_tensor(rows * n_items + cols, device=device)] = float("-inf")
            local = torch.as_tensor(
                np.repeat(np.arange(ub.size), counts[lo : lo + batch]), device=device
            )
            t = s[local, torch.as_tensor(ri[r0:r1], device=device)]
            if r1 - r0 == ub.size:  # one held-out row per user: compare in place
                ge[r0:r1] = _count_ge(s, t, work).cpu().numpy()
            else:
                for c in range(0, r1 - r0, batch):
                    sel = slice(c, c + batch)
                    cnt = _count_ge(s[local[sel]], t[sel], work)
                    ge[r0 + c : r0 + c + cnt.numel()] = cnt.cpu().numpy()
            target[r0:r1] = t.cpu().numpy()
            vals, idx = torch.topk(s, kk, dim=1)
            idx[vals == float("-inf")] = -1
            top[lo : lo + ub.size, :kk] = idx.int().cpu().numpy()
            bar.update(ub.size)
    below, position = _pessimistic_positions(ru, target, ge)
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return FullRanking(
        users=users,
        n_candidates=n_items - mask.user_degrees()[users],
        top=top,
        row_user=row_user,
        row_item=row_item,
        below=below[back],
        position=position[back],
    )


def _pessimistic_positions(
    users: np.ndarray, target: np.ndarray, ge: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(below, position), int64 [R], for rows sorted by user.

    ge: candidates scoring >= each row's item, the item itself and the user's other
    held-out items included. Within a user, held-out items sorted best first take
    positions below + j (j = held-out items before it), so ties among them take
    consecutive positions and ties with irrelevant items count against the model.
    """
    n = users.size
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    o = np.lexsort((-target.astype(np.float64), users))  # by user, best held-out item first
    us, ts = users[o], target[o]
    idx = np.arange(n)
    new_user = np.r_[True, us[1:] != us[:-1]]
    new_run = new_user | np.r_[True, ts[1:] != ts[:-1]]
    group_start = np.maximum.accumulate(np.where(new_user, idx, 0))
    run_ends = np.r_[np.flatnonzero(new_run)[1:], n] - 1
    run_end = run_ends[np.cumsum(new_run) - 1]
    held_ge = run_end - group_start + 1  # the user's held-out items scoring >= this one
    below = np.empty(n, np.int64)
    position = np.empty(n, np.int64)
    below[o] = ge[o] - held_ge
    position[o] = below[o] + (idx - group_start)
    return below, position


# `negsamp.evaluate(...)` is the Python API's evaluate (negsamp.api.evaluate); this module is callable as it
__import__("negsamp").callable_module(__name__)
