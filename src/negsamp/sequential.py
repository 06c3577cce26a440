"""Training sequential models (``sasrec``, ``gru4rec``): per-position negatives, losses, fit.

The training windows and the negatives come from :mod:`negsamp.sequences`; negatives are
drawn per target position while training, on the training device, from the ``NEGATIVES``
stream, never an item of the user's excluded set unless ``sampler.exclude: none``. A pool of positions x n_neg would not be stored at realistic sizes; the
sample-negatives stage writes the sampler's configuration, seed and the statistics of one
epoch-sized draw instead (:func:`draw_statistics`). ``in_batch`` uses the batch's distinct
target items as every position's negatives (the user's own items masked, logQ of the item's
popularity subtracted). Losses: ``bce`` / ``gbce`` (:func:`negsamp.models.losses.gbce`
with the paper's beta), ``sampled_softmax`` (logQ-corrected with ``train.logq_correction``)
and ``full_softmax`` (cross-entropy over the catalog, no negatives drawn).

Early stopping, checkpoints and the history follow :mod:`negsamp.train`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from negsamp import faults
from negsamp.early_stop import Progress, validate
from negsamp.interactions import Interactions
from negsamp.models import checkpoint as ckpt
from negsamp.models import losses
from negsamp.rng import Stream, torch_generator
from negsamp.samplers.torch_exact import TorchPositives
from negsamp.sequences import Negatives, Windows, followed_by, histories, windows

log = logging.getLogger(__name__)


_DENSE_RATIO = 64  # score every item when n_neg * this >= the catalog: the cheaper route


def position_loss(
    model: Any,
    h: torch.Tensor,
    users: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    draw: Callable[[torch.Tensor], torch.Tensor] | None,
    log_q: torch.Tensor | None,
    in_batch: TorchPositives | None = None,
) -> torch.Tensor:
    """float [P]: the loss of each target position.

    h float [P, d]: the model's outputs at the positions; users, targets int64 [P]. kind:
    the model's loss; draw(users) -> int64 [P, K] negatives (None for full_softmax and
    in_batch); log_q float [n_items] or None (sampled softmax's / in_batch's correction);
    in_batch: the excluded positives, given for the in_batch sampler.
    """
    if kind == "full_softmax":
        return losses.full_softmax(h @ model.item_vectors().T, targets)
    if in_batch is not None:
        items, col = torch.unique(targets, return_inverse=True)
        logits = h @ model.item_vectors(items).T  # [P, U]
        with torch.no_grad():
            uu, u_at = torch.unique(users, return_inverse=True)
            hits = in_batch.contains(uu[:, None], items[None, :])[u_at]  # the user's own items
            hits[torch.arange(col.numel(), device=col.device), col] = False
        if log_q is not None:
            logits = logits - log_q[items][None, :]
        return F.cross_entropy(
            logits.float().masked_fill(hits, float("-inf")), col, reduction="none"
        )
    negs = draw(users)
    if negs.shape[1] * _DENSE_RATIO >= model.n_items:
        # many negatives of a small catalog: one matmul against every item, then gathers
        # (the [P, K, d] embedding gather and its scatter-add backward are ~4x slower on CPU)
        s_all = h @ model.item_vectors().T
        s_pos = s_all.gather(1, targets[:, None])[:, 0]
        s_neg = s_all.gather(1, negs)
    else:
        s_pos = (h * model.item_vectors(targets)).sum(-1)
        s_neg = torch.bmm(model.item_vectors(negs), h.unsqueeze(2)).squeeze(2)
    if kind in ("bce", "gbce") and model.cfg.bce_offset:
        # start at the prior odds of a positive among 1 + K: without it, many negatives first
        # drive every logit far below 0 and training sits on a popularity plateau for many
        # epochs (measured: README). A shift of all logits: rankings do not change.
        off = math.log(negs.shape[1])
        s_pos, s_neg = s_pos - off, s_neg - off
    if kind == "gbce":
        beta = losses.gbce_beta(negs.shape[1], model.n_items, model.cfg.gbce_t)
        return losses.gbce(s_pos, s_neg, beta)
    lq = None if log_q is None or kind != "sampled_softmax" else log_q[negs]
    return losses.sampled(kind, s_pos, s_neg, lq)


def fit(
    model: Any,
    rows: Windows,
    cfg: Any,
    seed: int,
    device: torch.device,
    *,
    sampler: Any,
    exclude: Interactions,
    item_counts: np.ndarray,
    valid: Any = None,
    checkpoint: Path | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place for up to ``cfg.epochs`` (a :class:`TrainCfg`) on ``rows``;
    returns the per-epoch history [{epoch, loss, seconds, positions_per_second, valid_...}].
    ``valid`` is a :class:`negsamp.train.Validation` (it ranks with the model's history)."""
    model.to(device).train()
    m = model.cfg
    lr = cfg.lr if cfg.lr is not None else m.lr
    wd = cfg.l2 if cfg.l2 is not None else m.l2
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd, fused=True)
    perm = torch_generator(seed, Stream.SHUFFLE)
    neg_gen = torch_generator(seed, Stream.NEGATIVES, device=device)
    drop_gen = torch_generator(seed, Stream.DROPOUT, device=device)
    model.set_dropout_generator(drop_gen)
    kind = m.loss
    side = "in_batch" if sampler.name == "in_batch" else "drawn"
    draw = log_q = batch_pos = None
    if kind == "full_softmax":
        log.info(
            "%s full_softmax: every item is a negative, sampler %r unused", m.name, sampler.name
        )
    elif side == "in_batch":
        from negsamp.samplers.batch import item_log_q

        batch_pos = TorchPositives(exclude, device)
        log_q = item_log_q(item_counts, device) if sampler.logq_correction else None
    else:
        negatives = Negatives(sampler, exclude, item_counts, device)
        log_q = negatives.log_q if cfg.logq_correction else None

        def draw(u: torch.Tensor) -> torch.Tensor:
            return negatives(u, neg_gen)

    inputs, targets = rows.inputs.to(device), rows.targets.to(device)
    users = rows.users.to(device)
    n, bs = inputs.shape[0], m.batch_size
    fp = ckpt.fingerprint(m, cfg, seed, sampler, tuple(inputs.shape))
    gens = {"perm": perm, "neg": neg_gen, "dropout": drop_gen}
    scaler = torch.amp.GradScaler(enabled=False)
    state = Progress.start(checkpoint, cfg, fp, model, opt, scaler, gens)
    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc=f"train {m.name}", unit="epoch")
    while state.epoch < cfg.epochs and not state.stopped:
        epoch, t0 = state.epoch, time.perf_counter()
        order = torch.randperm(n, generator=perm).to(device)
        total, count = torch.zeros((), device=device), 0
        for lo in range(0, n, bs):
            idx = order[lo : lo + bs]
            tgt = targets[idx]
            mask = tgt != model.pad
            h = model.encode(inputs[idx])[mask]
            u = users[idx][:, None].expand_as(tgt)[mask]
            rows_loss = position_loss(model, h, u, tgt[mask], kind, draw, log_q, batch_pos)
            loss = rows_loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += rows_loss.detach().sum()
            count += rows_loss.numel()
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": float(total) / max(count, 1), "seconds": seconds}
        row["positions_per_second"] = count / seconds if seconds > 0 else math.inf
        row.update(validate(model, valid, device))
        state.record(model, row, cfg, valid)
        if checkpoint is not None and cfg.checkpoint:
            ckpt.save(checkpoint, fp, state.__dict__, model, opt, scaler, gens)
        faults.point("train:epoch")
        bar.update()
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k == "loss" or "valid" in k})
        if on_epoch is not None:
            on_epoch(row)
    bar.close()
    model.set_dropout_generator(None)
    return state.finish(model, cfg)


def train_configured(
    cfg: Any,
    model: Any,
    frame: pl.DataFrame,
    valid: pl.DataFrame | None,
    checker: Any,
    device: torch.device,
    exclude: Interactions,
    checkpoint: Path | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Fit the sequential ``model`` as :func:`negsamp.train.train_configured` does: validate
    with the training sequences as histories, then keep training + validation item as the
    histories the saved model scores with (the test item follows them)."""
    m = model.cfg
    train = Interactions.from_frame(frame, model.n_users, model.n_items)
    rows = windows(frame, m.max_len, model.n_items)
    model.set_history(histories(frame, model.n_users, m.max_len, model.n_items))
    log.info(
        "training %s (%s loss, %s negatives) on %s: %d sequences, %d windows, up to %d epochs",
        m.name,
        m.loss,
        cfg.sampler.name,
        device,
        int(train.user_degrees().astype(bool).sum()),
        rows.users.numel(),
        cfg.train.epochs,
    )
    history = fit(
        model,
        rows,
        cfg.train,
        cfg.base.seed,
        device,
        sampler=cfg.sampler.active,
        exclude=exclude,
        item_counts=train.item_counts(),
        valid=checker,
        checkpoint=checkpoint,
        on_epoch=on_epoch,
    )
    model.set_history(histories(followed_by(frame, valid), model.n_users, m.max_len, model.n_items))
    return history
