"""The trainer shared by all models: mini-batches over a negative pool, or closed-form steps.

Gradient models (:func:`fit`): epoch ``e`` reads slice ``e % pool_epochs`` of the pool in
an order shuffled by the ``SHUFFLE`` stream of the seed (:mod:`negsamp.rng`); a batch's
negatives come from the pool, or from the batch itself for the batch-side samplers
(``in_batch``, ``hard``, ``mixed``; see :mod:`negsamp.models.objectives`, drawing from
``NEGATIVES``). Dropout masks come from the ``DROPOUT`` stream on the device, never
torch's global generator. After every epoch the validation item (leave-one-out minus
one) is ranked, early stopping watches ``train.monitor``, and a checkpoint
(:mod:`negsamp.models.checkpoint`, with every generator's state) is written atomically,
so a crashed run resumes to the same weights as an uninterrupted one (CPU, fixed seed).
Closed-form models (``ials``, :func:`fit_closed_form`) take the positives, not the pool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from negsamp import evaluate as ev
from negsamp import faults
from negsamp.device import precision
from negsamp.early_stop import Progress as _Progress
from negsamp.early_stop import validate as _validate
from negsamp.interactions import Interactions
from negsamp.models import build_model, objectives
from negsamp.models import checkpoint as ckpt
from negsamp.rng import Stream, derive_seed, torch_generator
from negsamp.threads import ThreadGovernor

log = logging.getLogger(__name__)


def recency_weights(frame: pl.DataFrame, boost: float, window: float) -> np.ndarray | None:
    """float32 [rows]: 1 + boost * exp(-k / window) for a user's k-th most recent positive
    (k = 0 the latest; ties in time broken by item id, the split's rule), in (user, item)
    order: the order of the training CSR and of a pool's rows. None when ``boost`` is 0 or
    the data has no time order (no timestamps, or all equal: "recent" would mean the
    highest item id, the split's tie rule, and leak it into training; warned).
    frame: user, item, timestamp (one row per pair).
    """
    if boost == 0 or "timestamp" not in frame.columns or frame["timestamp"].null_count():
        return None
    if frame["timestamp"].n_unique() <= 1:
        log.warning(
            "the training positives have no time order (no timestamps): recency_boost=%g is "
            "switched off, every positive weighs 1 (set the model's recency_boost: 0 to say so)",
            boost,
        )
        return None
    ranked = frame.select("user", "item", "timestamp").sort("user", "timestamp", "item")
    ranked = ranked.with_columns(
        back=pl.len().over("user") - 1 - pl.int_range(pl.len()).over("user")
    ).sort("user", "item")
    back = ranked["back"].to_numpy().astype(np.float64)
    return (1.0 + boost * np.exp(-back / window)).astype(np.float32)


def confidence(train: Interactions, model_cfg: Any, recency: np.ndarray | None) -> Interactions:
    """The positives a closed-form model (``ials``) fits, with ``counts`` = its strength f * r.

    f is ``train.counts`` (the aggregated weight where the data has one, else the event
    count), or log1p(f / epsilon) with ``confidence: log``; r the recency weight float32
    [nnz] in CSR order (None: 1). The model's confidence is then c = 1 + alpha * f * r.
    """
    f = train.counts
    if getattr(model_cfg, "confidence", "linear") == "log":
        f = np.log1p(f.astype(np.float64) / model_cfg.epsilon).astype(np.float32)
    if recency is not None:
        f = f * recency
    return train if f is train.counts else replace(train, counts=f)


def positive_weights(
    train: Interactions, how: str, recency: np.ndarray | None
) -> np.ndarray | None:
    """float32 [nnz] in CSR order: each positive's loss weight for the gradient models, the
    recency weight times the strength (``train.positive_weight``: none = 1, linear = f,
    log = 1 + log1p(f), normalised to mean 1 so the loss keeps its scale); None when all 1."""
    if how == "none":
        return recency
    f = train.counts.astype(np.float64)
    s = f if how == "linear" else 1.0 + np.log1p(f)
    mean = s.mean() if s.size else 0.0
    s = (s / mean if mean > 0 else np.ones_like(s)).astype(np.float32)
    return s if recency is None else (s * recency).astype(np.float32)


def pool_weights(pool: Pool, train: Interactions, weights: np.ndarray | None) -> Pool:
    """``pool`` with the per-positive ``weights`` (CSR order of ``train``) of its rows."""
    if weights is None:
        return pool
    keys = pool.users.cpu().numpy() * train.n_items + pool.pos.cpu().numpy()
    csr_keys = train.rows().astype(np.int64) * train.n_items + train.indices
    return pool.with_weights(weights[np.searchsorted(csr_keys, keys)])


@dataclass(frozen=True)
class Pool:
    """A training pool in memory: users/pos int64 [n], negs int64 [pool_epochs, n, n_neg]."""

    users: torch.Tensor
    pos: torch.Tensor
    negs: torch.Tensor
    weights: torch.Tensor | None = None  # float32 [n]: per-positive loss weights

    @classmethod
    def from_frame(cls, df: pl.DataFrame, device: torch.device) -> Pool:
        epochs = int(df["epoch"].max()) + 1
        df = df.sort(["epoch", "user", "pos_item"])
        n = df.height // epochs
        first = df.slice(0, n)
        negs = df["neg_items"].to_numpy().reshape(epochs, n, -1)
        return cls(
            torch.as_tensor(first["user"].to_numpy().astype(np.int64), device=device),
            torch.as_tensor(first["pos_item"].to_numpy().astype(np.int64), device=device),
            torch.as_tensor(negs.astype(np.int64), device=device),
        )

    @classmethod
    def from_positives(cls, train: Interactions, device: torch.device) -> Pool:
        """The positives with no negatives (``in_batch`` draws them from the batch)."""
        users = torch.as_tensor(train.rows().astype(np.int64), device=device)
        pos = torch.as_tensor(train.indices.astype(np.int64), device=device)
        return cls(users, pos, torch.empty((1, users.numel(), 0), dtype=torch.int64, device=device))

    @property
    def pool_epochs(self) -> int:
        return int(self.negs.shape[0])

    def with_weights(self, weights: np.ndarray | None) -> Pool:
        """This pool with per-positive weights float [n] in its row order (None: unweighted)."""
        if weights is None:
            return self
        w = torch.as_tensor(np.asarray(weights, np.float32), device=self.users.device)
        return replace(self, weights=w)


class DataParallel(Protocol):
    """What data-parallel training (:mod:`negsamp.cluster.training`, one per worker) changes
    in :func:`fit`. Every worker walks the same shuffled order (the seed's); each trains on
    its rows of every batch; the backward pass averages the gradients over the workers
    (DistributedDataParallel), so every replica takes the same step; rank 0 validates and
    the others stop when it does. Workers beyond rank 0 draw batch-side negatives and
    dropout masks from streams of their ``rank``, so their rows share no random numbers."""

    rank: int

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This worker's rows of the batch ``idx`` int64 [B] and the weight of its mean loss
        (its rows x workers / B: the workers' average of weighted means is the batch mean)."""
        ...

    def wrap(self, model: Any, loss: objectives.BatchLoss) -> objectives.BatchLoss:
        """``loss`` computed through the DDP-wrapped ``model``: its backward all-reduces."""
        ...

    def total(self, total: torch.Tensor) -> torch.Tensor:
        """The epoch's summed loss over every worker, from this worker's (weighted) sum."""
        ...

    def agree(self, stopped: bool) -> bool:
        """Rank 0's early-stopping decision, on every worker."""
        ...


@dataclass(frozen=True)
class Validation:
    """Each user's validation item ranked by the protocol of ``monitor`` (as evaluate does).

    frame: user, item (+ candidates array[int32, C] for the sampled protocol, drawn once).
    seen: the positives masked in full ranking: training, plus the user's held-out test
    items (issue #18: the test item is never a validation negative, in either protocol).
    """

    frame: pl.DataFrame
    seen: Interactions
    monitor: str
    batch: int

    @classmethod
    def build(
        cls,
        train: Interactions,
        valid: pl.DataFrame,
        monitor: str,
        n_neg: int,
        seed: int,
        batch: int,
        test: pl.DataFrame | None = None,
    ) -> Validation | None:
        """None when there is no validation item (``split.validation: false``).

        test: user, item of the held-out test rows. Neither a sampled candidate nor a
        full-ranking competitor of the validation item is one of its user's test items
        (the candidates stage likewise keeps validation items out of the test candidates).
        """
        if valid.height == 0:
            return None
        frame = valid.select("user", "item")
        held = test.select("user", "item") if test is not None else frame.clear()
        seen = train
        if held.height:
            seen = Interactions.from_arrays(
                np.concatenate([train.rows(), held["user"].to_numpy()]),
                np.concatenate([train.indices, held["item"].to_numpy()]),
                train.n_users,
                train.n_items,
            )
        if monitor.startswith("sampled"):
            from negsamp.samplers.pool import eval_candidates

            known = Interactions.from_arrays(
                np.concatenate([seen.rows(), frame["user"].to_numpy()]),
                np.concatenate([seen.indices, frame["item"].to_numpy()]),
                train.n_users,
                train.n_items,
            )
            frame = eval_candidates(known, frame, n_neg, derive_seed(seed, Stream.VALIDATION))
        return cls(frame, seen, monitor, batch)

    @torch.no_grad()
    def __call__(self, model: Any, device: torch.device) -> dict[str, float]:
        """``valid_<metric>_<k>`` of the monitored protocol at the monitored k, the mean
        over validation rows (one per user): HR/NDCG sampled, or Recall/NDCG full."""
        k = int(self.monitor.rsplit("_", 1)[1])
        if self.monitor.startswith("sampled"):
            rank = ev.sampled_ranks(model.score, self.frame, device, self.batch)
            names = ("sampled_hr", "sampled_ndcg")
        else:
            full = ev.full_ranking(model.score_all, self.seen, self.frame, k, device, self.batch)
            rank, names = full.position, ("full_recall", "full_ndcg")
        hit = rank < k
        ndcg = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
        return {
            f"valid_{names[0]}_{k}": float(hit.mean()),
            f"valid_{names[1]}_{k}": float(ndcg.mean()),
        }


def fit(
    model: Any,
    pool: Pool,
    cfg: Any,
    seed: int,
    device: torch.device,
    *,
    valid: Validation | None = None,
    sampler: Any = None,
    train: Interactions | None = None,
    exclude: Interactions | None = None,
    checkpoint: Path | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    adapt_threads: bool = True,
    parallel: DataParallel | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place for up to ``cfg.epochs`` (a :class:`TrainCfg`); returns the
    per-epoch history [{epoch, loss, seconds, pairs_per_second, valid_<metric>...}].

    ``sampler`` is the sampler config (batch-side ones need ``train``, the CSR of training
    positives; ``mixed`` with an item cap redraws negatives avoiding ``exclude``, the
    ``sampler.exclude`` positives the pool avoided, needed for ``train+valid``); ``checkpoint`` is written after every epoch and read when ``cfg.resume``.
    ``on_epoch`` is called after each epoch's checkpoint (tests raise in it to crash).
    ``adapt_threads``: on CPU, for a ``thread_invariant`` model (same bytes at any count),
    each epoch runs at torch's thread count or at 1, whichever its first batches ran
    faster (:class:`negsamp.threads.ThreadGovernor`). ``parallel``: this worker's share of
    data-parallel training (:class:`DataParallel`; only rank 0 gets ``valid``).
    """
    model.to(device).train()
    lr = cfg.lr if cfg.lr is not None else model.cfg.lr
    l2 = cfg.l2 if cfg.l2 is not None else model.cfg.l2
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel for the whole update (about 4x faster than foreach on CPU)
    kind = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    opt = kind(params, lr=lr, fused=True)
    amp, scaler = precision(cfg.precision, device)
    perm = torch_generator(seed, Stream.SHUFFLE)
    if parallel is None or parallel.rank == 0:
        neg_gen = torch_generator(seed, Stream.NEGATIVES, device=device)
        drop_gen = torch_generator(seed, Stream.DROPOUT, device=device)
    else:  # the other workers' rows draw their own numbers
        neg_gen = torch_generator(seed, Stream.WORKER_NEGATIVES, parallel.rank, device=device)
        drop_gen = torch_generator(seed, Stream.WORKER_DROPOUT, parallel.rank, device=device)
    model.set_dropout_generator(drop_gen)
    objective = objectives.build(
        sampler,
        pool.negs,
        pool.users.numel(),
        train,
        model.n_items,
        cfg.logq_correction,
        neg_gen,
        exclude,
    )
    loss_of = objective.loss if parallel is None else parallel.wrap(model, objective.loss)
    n = pool.users.shape[0]
    fp = ckpt.fingerprint(model.cfg, cfg, seed, sampler, pool.negs.shape)
    gens = {"perm": perm, "neg": neg_gen, "dropout": drop_gen}
    state = _Progress.start(checkpoint, cfg, fp, model, opt, scaler, gens)
    adapt = adapt_threads and getattr(model, "thread_invariant", False)
    governor = ThreadGovernor(torch.get_num_threads() if adapt else 1, device)
    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc=f"train {model.cfg.name}", unit="epoch")
    while state.epoch < cfg.epochs and not state.stopped:
        epoch, t0 = state.epoch, time.perf_counter()
        order = torch.randperm(n, generator=perm).to(device)
        negs = pool.negs[epoch % pool.pool_epochs]
        objective.start_epoch(epoch)
        governor.start_epoch()
        total = torch.zeros((), device=device)
        for lo in range(0, n, cfg.batch_size):
            governor.tick()
            idx = order[lo : lo + cfg.batch_size]
            rows, share = (idx, None) if parallel is None else parallel.rows(idx)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                w = None if pool.weights is None else pool.weights[rows]
                loss = loss_of(model, pool.users[rows], pool.pos[rows], negs[rows], l2, w)
                loss = loss if share is None else loss * share
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += loss.detach().float() * idx.numel()
        seconds = time.perf_counter() - t0  # float(total) below waits for the device
        governor.finish()
        total = total if parallel is None else parallel.total(total)
        row = {"epoch": epoch, "loss": float(total) / max(n, 1), "seconds": seconds}
        row["pairs_per_second"] = n * objective.per_positive(min(cfg.batch_size, n)) / seconds
        row.update(objective.stats())
        row.update(_validate(model, valid, device))
        state.record(model, row, cfg, valid)
        if parallel is not None:
            state.stopped = parallel.agree(state.stopped)
        if checkpoint is not None and cfg.checkpoint:
            ckpt.save(checkpoint, fp, state.__dict__, model, opt, scaler, gens)
        faults.point("train:epoch")  # a crash mid-training (tests/integration/test_faults.py)
        bar.update()
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k == "loss" or "valid" in k})
        log.debug("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if on_epoch is not None:
            on_epoch(row)
    bar.close()
    model.set_dropout_generator(None)  # the run's generator stays with the run
    return state.finish(model, cfg)


def fit_closed_form(
    model: Any,
    train: Interactions,
    cfg: Any,
    device: torch.device,
    valid: Validation | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Fit a ``trains_on_pool = False`` model (``ials``): ``model.cfg.iterations`` closed-form
    steps on the training positives, with the same validation and early stopping;
    ``on_epoch`` is called with each iteration's row (as :func:`fit` does)."""
    model.prepare(train, device)
    state = _Progress()
    for it in tqdm(range(model.cfg.iterations), desc=f"train {model.cfg.name}", unit="iter"):
        t0 = time.perf_counter()
        loss = model.step()
        row = {"epoch": it, "loss": loss, "seconds": time.perf_counter() - t0}
        row.update(_validate(model, valid, device))
        state.record(model, row, cfg, valid)
        log.debug("iteration %d: %s", it, {k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if on_epoch is not None:
            on_epoch(row)
        if state.stopped:
            break
    return state.finish(model, cfg)


def initial_model(cfg: Any, n_users: int, n_items: int) -> Any:
    """The configured model before training: drawn from the ``MODEL_INIT`` stream of
    ``base.seed``, or initialised from the pretrained models it names (NeuMF)."""
    gen = torch_generator(cfg.base.seed, Stream.MODEL_INIT)
    return build_model(cfg.model.active, n_users, n_items, generator=gen, load_pretrained=True)


def train_configured(
    cfg: Any,
    frame: pl.DataFrame,
    n_users: int,
    n_items: int,
    device: torch.device,
    *,
    valid: pl.DataFrame | None,
    pool: Callable[[], pl.DataFrame],
    exclude: Callable[[], Interactions],
    test: pl.DataFrame | None = None,
    checkpoint: Path | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    parallel: DataParallel | None = None,
    model: Any = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Build and train the configured model: what the train stage and the Python API run.

    cfg: a :class:`negsamp.config.Config` (or a stage's scoped view of it) whose
    ``model.active``, ``sampler``, ``train``, ``evaluate.n_eval_neg`` / ``batch_size`` and
    ``base.seed`` are read. frame: the training rows (user, item, count, timestamp), dense
    ids. valid: user, item of each validation row (None or empty: no early stopping).
    test: user, item of the test rows, kept out of the validation item's competitors.
    pool: returns the training pool frame, called only when the model trains on one (not
    ``ials``, not ``in_batch``). exclude: returns the ``sampler.exclude`` positives, called
    only for ``mixed`` with an item cap and for sequential models (``sasrec``, ``gru4rec``: their
    per-position negatives avoid it; see :mod:`negsamp.sequential`). parallel: one worker of
    data-parallel training (gradient models on a pool only; the config refuses the others).
    model: the initial model (a worker's copy of the driver's); None builds it from the seed.
    Returns (model in eval mode, per-epoch history).
    """
    train = Interactions.from_frame(frame, n_users, n_items)
    m = cfg.model.active
    if model is None:
        model = initial_model(cfg, n_users, n_items)
    checker = None
    if valid is not None:
        checker = Validation.build(
            train,
            valid.select("user", "item"),
            cfg.train.monitor,
            cfg.evaluate.n_eval_neg,
            cfg.base.seed,
            cfg.evaluate.batch_size,
            test=test,
        )
    if checker is None:
        log.info("no validation items (split.validation: false): no early stopping")
    if getattr(model, "sequential", False):
        from negsamp import sequential

        history = sequential.train_configured(
            cfg, model, frame, valid, checker, device, exclude(), checkpoint, on_epoch
        )
        return model, history
    weights = recency_weights(frame, m.recency_boost, m.recency_window)
    if not model.trains_on_pool:
        log.info(
            "model %s fits every cell in closed form: sampler %r and its pool are ignored",
            cfg.model.name,
            cfg.sampler.name,
        )
        conf = confidence(train, m, weights)
        return model, fit_closed_form(model, conf, cfg.train, device, checker, on_epoch)
    if cfg.sampler.name == "in_batch":
        batches = Pool.from_positives(train, device)
    else:
        batches = Pool.from_frame(pool(), device)
    # the pool's rows are training positives: look their weights up
    weights = positive_weights(train, cfg.train.positive_weight, weights)
    batches = pool_weights(batches, train, weights)
    log.info(
        "training %s (%s loss, %s negatives) on %s: %d positives, up to %d epochs",
        cfg.model.name,
        m.loss,
        cfg.sampler.name,
        device,
        batches.users.shape[0],
        cfg.train.epochs,
    )
    capped = getattr(cfg.sampler.active, "max_item_share", None) is not None
    history = fit(
        model,
        batches,
        cfg.train,
        cfg.base.seed,
        device,
        valid=checker,
        sampler=cfg.sampler.active,
        train=train,
        exclude=exclude() if capped else None,  # the cap redraws from the pool's candidate set
        checkpoint=checkpoint,
        on_epoch=on_epoch,
        parallel=parallel,
    )
    return model, history
