"""The refit (issue #13): the winning configuration trained again on every interaction.

The model the gate evaluates was trained without each user's two most recent interactions
(validation and test). Once it has won on held-out data, :func:`refit` trains the same
model (same settings, seed and sampler) on the whole log, every appended batch included,
for exactly the epochs early stopping kept (:func:`negsamp.sweep.select.kept_epochs`),
with no validation and no early stopping: there is nothing held out left to watch.

Negatives are drawn as the configuration drew them, from the whole log instead of the
training split: a data-side sampler gets a fresh pool (same ``pool_epochs``, ``n_neg`` and
seed) that avoids every logged positive (``sampler.exclude: none`` avoids none, as
before); ``in_batch`` draws from the batch; ``ials`` runs the kept number of iterations.
Pure logic, deterministic on CPU for fixed inputs: the register stage reads the files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import polars as pl
import torch

from negsamp import train as trainer
from negsamp.interactions import Interactions
from negsamp.models import build_model
from negsamp.rng import Stream, torch_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refit:
    """model: the refit model (eval mode); epochs: epochs (or iterations) it trained;
    positives: the (user, item) pairs it trained on; history: its per-epoch rows."""

    model: Any
    epochs: int
    positives: int
    history: list[dict[str, float]]


def refit(
    model_cfg: Any,
    sampler_cfg: Any,
    train_cfg: Any,
    log_frame: pl.DataFrame,
    n_users: int,
    n_items: int,
    epochs: int,
    seed: int,
    device: torch.device,
    **sampler_deps: Any,
) -> Refit:
    """Train ``model_cfg`` for ``epochs`` on every pair of ``log_frame``.

    model_cfg / sampler_cfg / train_cfg: the configuration's active model and sampler and
    its ``train`` section (``train.epochs`` and early stopping are replaced by ``epochs``).
    log_frame: user, item (int, dense ids), count and timestamp where known, one row per
    pair: the whole interaction log. ``sampler_deps``: what the sampler needs beyond its
    params (``score_all`` for ``teacher_hard``), as for the sample-negatives stage.
    """
    if epochs < 1:
        raise ValueError(f"a refit needs at least one epoch, got {epochs}")
    positives = Interactions.from_frame(log_frame, n_users, n_items)
    if getattr(model_cfg, "iterations", None) is not None:  # closed form: iterations, no pool
        model_cfg = model_cfg.model_copy(update={"iterations": epochs})
    model = build_model(
        model_cfg, n_users, n_items, torch_generator(seed, Stream.MODEL_INIT), load_pretrained=True
    )
    log.info(
        "refit %s (%s negatives) on every interaction: %d positives, %d epochs",
        model_cfg.name,
        sampler_cfg.name,
        positives.nnz,
        epochs,
    )
    if getattr(model, "sequential", False):
        return _refit_sequence(
            model, sampler_cfg, train_cfg, log_frame, positives, epochs, seed, device
        )
    weights = trainer.recency_weights(log_frame, model_cfg.recency_boost, model_cfg.recency_window)
    if not model.trains_on_pool:
        conf = trainer.confidence(positives, model_cfg, weights)
        history = trainer.fit_closed_form(model, conf, train_cfg, device)
        return Refit(model, epochs, positives.nnz, history)
    exclude = _exclusions(sampler_cfg, positives)
    pool = _pool(sampler_cfg, positives, exclude, seed, device, sampler_deps)
    # the pool's rows are logged positives: look their weights up
    weights = trainer.positive_weights(positives, train_cfg.positive_weight, weights)
    pool = trainer.pool_weights(pool, positives, weights)
    cap = getattr(sampler_cfg, "max_item_share", None) is not None
    history = trainer.fit(
        model,
        pool,
        train_cfg.model_copy(update={"epochs": epochs, "patience": 0}),
        seed,
        device,
        sampler=sampler_cfg,
        train=positives,
        exclude=exclude if cap else None,
    )
    return Refit(model, epochs, positives.nnz, history)


def _refit_sequence(
    model: Any,
    sampler_cfg: Any,
    train_cfg: Any,
    log_frame: pl.DataFrame,
    positives: Interactions,
    epochs: int,
    seed: int,
    device: torch.device,
) -> Refit:
    """A sequential model on every user's whole sequence; its histories end at the latest item."""
    from negsamp import sequential

    m, n = model.cfg, positives.n_items
    history = sequential.fit(
        model,
        sequential.windows(log_frame, m.max_len, n),
        train_cfg.model_copy(update={"epochs": epochs, "patience": 0}),
        seed,
        device,
        sampler=sampler_cfg,
        exclude=_exclusions(sampler_cfg, positives),
        item_counts=positives.item_counts(),
    )
    model.set_history(sequential.histories(log_frame, positives.n_users, m.max_len, n))
    return Refit(model, epochs, positives.nnz, history)


def _exclusions(sampler_cfg: Any, positives: Interactions) -> Interactions:
    """What a negative may never be: every logged positive (``sampler.exclude`` train or
    train+valid: on the whole log both mean all of it), or nothing for ``none``."""
    if getattr(sampler_cfg, "exclude", "train") == "none":
        from negsamp.samplers.exact import no_exclusions

        return no_exclusions(positives.n_users, positives.n_items)
    return positives


def _pool(
    sampler_cfg: Any,
    positives: Interactions,
    exclude: Interactions,
    seed: int,
    device: torch.device,
    deps: dict[str, Any],
) -> trainer.Pool:
    """The refit's pool: as the sample-negatives stage draws it, from the whole log."""
    if sampler_cfg.name == "in_batch":
        return trainer.Pool.from_positives(positives, device)
    from negsamp.samplers import build_sampler
    from negsamp.samplers.pool import audit_pool, training_pool

    sampler = build_sampler(sampler_cfg, positives, **deps)
    frame = training_pool(
        sampler,
        positives,
        sampler_cfg.pool_width,
        sampler_cfg.pool_epochs,
        seed,
        exclude=exclude,
    )
    audit_pool(frame, exclude)
    return trainer.Pool.from_frame(frame, device)
