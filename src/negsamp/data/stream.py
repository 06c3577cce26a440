"""A simulated stream of time windows after the synthetic base log, with controlled drift.

The drift check, the retrain trigger and ``negsamp demo-drift`` need new data whose
drift we set. :func:`windows` continues :func:`negsamp.data.synthetic.generate`'s log
(same seed: the same items, clusters, users, tastes and activity are rebuilt from it):

- drift 0: the base population and the popularity at the base log's end; base users
  produce events in proportion to their base activity (so a window looks like a random
  thinning of the base log);
- drift d in (0, 1]: item log-popularity moves a share d of the way from the base end
  towards one independent "future" Zipf ranking shared by the whole stream (the same
  interpolation synthetic.py's ``drift`` applies over time); the first ``d * N`` of N
  future items (raw ids after the base catalog) carry ``d * new_item_share`` of the
  popularity mass (taste clusters move the realised event share a little), and the
  first ``d * M`` of M future users (raw ids after the base users, base-like activity
  and tastes) produce ``d * new_user_share`` of the events in expectation. N and M
  make the shares of the catalog and of the users at drift 1 equal to
  ``new_item_share`` and ``new_user_share``. Windows are nested: a window with the same
  or larger drift has every new item and user of a window with a smaller one.

Window ``w`` covers ``[end + w * W, end + (w + 1) * W)`` seconds, ``end`` the base log's
end and W ``window_days``. Its events depend only on (base_cfg, seed, w, drifts[w] and
the shares), never on the other windows. Vectorized; items are drawn by synthetic.py's
per-(taste group) segment sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from negsamp.config import SyntheticCfg
from negsamp.data.synthetic import (
    N_TIME_CHUNKS,
    SCHEMA,
    SECONDS_PER_DAY,
    _draw_items,
    _items,
    _log_order,
    _popularity,
    _start_unix,
    _users,
)
from negsamp.rng import Stream, numpy_rng

WINDOWS_PER_BASE = 12  # default window: a twelfth of the base log (a month of a year)


@dataclass(frozen=True)
class _Population:
    """Base plus future (stream-only) users and items; float64/int64 arrays."""

    logw_end: np.ndarray  # [n_items] log-popularity at the base log's end
    logz_future: np.ndarray  # [n_items + n_new_items] the future ranking's log-popularity
    cluster: np.ndarray  # [n_items + n_new_items] taste cluster of each item
    tastes: np.ndarray  # [n_users + n_new_users, k] each user's taste clusters
    rate: np.ndarray  # [n_users + n_new_users] relative activity (base event counts)


def _population(
    cfg: SyntheticCfg, seed: int, new_user_share: float, new_item_share: float
) -> _Population:
    # exactly generate()'s streams and calls, so the base structure is the same
    logz_start, logz_end, is_new, cluster = _items(cfg, numpy_rng(seed, Stream.SYNTHETIC_ITEMS))
    tastes, counts, _, _ = _users(cfg, numpy_rng(seed, Stream.SYNTHETIC_USERS))
    n_chunks = N_TIME_CHUNKS if cfg.drift > 0 else 1
    w_end = _popularity(cfg, n_chunks - 1, n_chunks, logz_start, logz_end, is_new)

    rng = numpy_rng(seed, Stream.DRIFT_POPULATION)
    n_new_items = round(cfg.n_items * new_item_share / (1 - new_item_share))
    n_new_users = round(cfg.n_users * new_user_share / (1 - new_user_share))
    future_rank = rng.permutation(cfg.n_items + n_new_items).astype(np.float64)
    new_cluster = rng.permutation(n_new_items) % cfg.n_tastes
    new_tastes = np.argsort(rng.random((n_new_users, cfg.n_tastes)), axis=1)[:, : tastes.shape[1]]
    new_rate = counts[rng.integers(cfg.n_users, size=n_new_users)]  # base activity profile
    return _Population(
        logw_end=np.log(w_end),
        logz_future=-cfg.zipf_exponent * np.log1p(future_rank),
        cluster=np.r_[cluster, new_cluster],
        tastes=np.r_[tastes, new_tastes],
        rate=np.r_[counts, new_rate].astype(np.float64),
    )


def _mix(old: np.ndarray, new: np.ndarray, new_mass: float) -> np.ndarray:
    """Concatenated weights [old + new] summing to 1, ``new`` carrying ``new_mass`` of it."""
    if new.size == 0:
        return old / old.sum()
    return np.r_[old * ((1 - new_mass) / old.sum()), new * (new_mass / new.sum())]


def windows(
    base_cfg: SyntheticCfg,
    seed: int,
    drifts: list[float],
    n_interactions: int | None = None,
    new_user_share: float = 0.25,
    new_item_share: float = 0.1,
    window_days: int | None = None,
    first_window: int = 0,
) -> list[pl.DataFrame]:
    """One raw event frame per entry of ``drifts`` (each in [0, 1]), continuing the base log.

    ``seed`` is the seed the base log was generated with. Each frame has
    :data:`~negsamp.data.synthetic.SCHEMA` (user Int64 raw id, item Int64 raw id, rating
    Float32 stars, timestamp Int64 unix seconds), exactly ``n_interactions`` rows (default:
    the base rate times the window length) sorted by (timestamp, user, item). Base ids are
    1..n_users / 1..n_items; new users and items have raw ids above those.
    ``first_window``: the index of ``drifts[0]``'s window (its time and random stream), so a
    stream can be built in pieces with different shares (``windows(..., [a, b])`` equals
    ``windows(..., [a]) + windows(..., [b], first_window=1)``).
    """
    if any(not 0.0 <= d <= 1.0 for d in drifts):
        raise ValueError(f"each drift must lie in [0, 1], got {list(drifts)}")
    for name, share in (("new_user_share", new_user_share), ("new_item_share", new_item_share)):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {share}")
    days = max(1, round(base_cfg.days / WINDOWS_PER_BASE)) if window_days is None else window_days
    if days < 1:
        raise ValueError(f"window_days must be >= 1, got {days}")
    if first_window < 0:
        raise ValueError(f"first_window must be >= 0, got {first_window}")
    n = n_interactions
    if n is None:
        n = max(1, round(base_cfg.n_interactions * days / base_cfg.days))
    elif n < 1:
        raise ValueError(f"n_interactions must be >= 1, got {n}")
    pop = _population(base_cfg, seed, new_user_share, new_item_share)
    n_items, n_users = base_cfg.n_items, base_cfg.n_users
    n_new_items, n_new_users = pop.logz_future.size - n_items, pop.rate.size - n_users
    base_end = base_cfg.days * SECONDS_PER_DAY  # seconds after the base start
    out = []
    for w, d in enumerate(drifts, start=first_window):
        rng = numpy_rng(seed, Stream.DRIFT_WINDOW, w)
        ni, nu = round(d * n_new_items), round(d * n_new_users)
        old = np.exp((1 - d) * pop.logw_end + d * pop.logz_future[:n_items])
        p_item = _mix(old, np.exp(pop.logz_future[n_items : n_items + ni]), d * new_item_share)
        p_user = _mix(pop.rate[:n_users], pop.rate[n_users : n_users + nu], d * new_user_share)
        user = rng.choice(n_users + nu, size=n, p=p_user)
        t = rng.random(n)
        from_taste = rng.random(n) < base_cfg.taste_strength
        pick = rng.integers(pop.tastes.shape[1], size=n)
        group = np.where(from_taste, pop.tastes[user, pick], base_cfg.n_tastes)
        logw = np.log(p_item)
        cfg_w = base_cfg.model_copy(update={"n_items": n_items + ni, "drift": 0.0})
        live = np.zeros(n_items + ni, dtype=bool)  # no "not yet released" items here
        chunk = np.zeros(n, dtype=np.int64)
        item = _draw_items(
            cfg_w, rng, chunk, group, 1, logw, logw, live, pop.cluster[: n_items + ni]
        )
        rating = np.clip(np.rint(rng.normal(np.where(from_taste, 4.0, 3.2), 0.9)), 1, 5)
        seconds = (
            base_end
            + w * days * SECONDS_PER_DAY
            + np.floor(t * days * SECONDS_PER_DAY).astype(np.int64)
        )
        order = _log_order(seconds, user, item, n_users + nu, n_items + ni)
        out.append(
            pl.DataFrame(
                {
                    "user": user[order] + 1,
                    "item": item[order] + 1,
                    "rating": rating[order].astype(np.float32),
                    "timestamp": _start_unix(base_cfg.start) + seconds[order],
                },
                schema=SCHEMA,
            )
        )
    return out
