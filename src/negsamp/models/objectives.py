"""Where a batch's negatives come from, per sampler, and the loss the trainer minimises.

One small function per mode, each ``(model, users, pos, pool_negs, l2, weight) -> loss``:

* data-side samplers (uniform, popularity, stratified, teacher_hard, ...): the pool's
  negatives; sampled softmax gets the logQ of the pool's own draws;
* ``in_batch``: the pool's negatives are ignored; a softmax over the batch's positives,
  accidental hits masked, logQ of the batch positives' popularity subtracted;
* ``hard``: the pool holds ``candidates`` base draws per positive; the top ``k`` by the
  model's current score are kept;
* ``mixed``: ``n_hard`` of those plus the pool's ``n_random`` random columns, with an
  optional per-epoch cap on any one item's share of the negatives. Uses over the cap are
  redrawn from the base sampler exactly as the pool drew them: never an item of the
  ``exclude`` set (``sampler.exclude`` resolved, e.g. train+valid), and with
  ``replace: false`` never an item already in the row (issue #12).

The batch-side functions come from :mod:`negsamp.samplers.batch` (imported lazily).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from negsamp.interactions import Interactions

BATCH_SIDE = ("in_batch", "hard", "mixed")
# (model, users int64 [B], pos int64 [B], pool negatives int64 [B, W], l2, weight [B] | None)
BatchLoss = Callable[
    [Any, torch.Tensor, torch.Tensor, torch.Tensor, float, torch.Tensor | None], torch.Tensor
]


def _nothing(epoch: int = 0) -> None:
    return None


@dataclass
class Objective:
    """How a batch is scored: ``loss``; ``per_positive(b)`` negatives per positive at batch
    size b (for pairs/second); ``start_epoch(epoch)`` sets per-epoch state (the ``mixed``
    item cap and hardness schedule); ``stats()`` adds per-epoch values to the history."""

    loss: BatchLoss
    per_positive: Callable[[int], int]
    start_epoch: Callable[[int], None] = _nothing
    stats: Callable[[], dict[str, float]] = field(default=dict)


def build(
    sampler: Any,
    pool_negs: torch.Tensor,
    n_positives: int,
    train: Interactions | None,
    n_items: int,
    logq: bool,
    gen: torch.Generator,
    exclude: Interactions | None = None,
) -> Objective:
    """The objective for sampler config ``sampler`` (None: the pool's negatives).

    pool_negs: int64 [pool_epochs, n, W], the pool (its draws give sampled softmax's logQ
    when ``logq``); train: the CSR of training positives (batch-side samplers need it);
    exclude: the positives the pool excluded (``sampler.exclude`` resolved), which the
    ``mixed`` cap's redraws exclude too; None resolves ``train`` and ``none`` from
    ``train`` and is an error for ``train+valid`` with the cap on.
    """
    name = getattr(sampler, "name", None)
    if name not in BATCH_SIDE:
        table = pool_log_q(pool_negs, n_items) if logq else None

        def pooled(model, u, p, negs, l2, w):  # noqa: ANN001, ANN202
            return model.loss(u, p, negs, l2, None if table is None else table[negs], w)

        return Objective(pooled, lambda b: int(pool_negs.shape[2]))
    from negsamp.samplers import batch as sb

    if train is None:
        raise ValueError(f"sampler {name!r} needs the training positives (train=)")
    device = pool_negs.device
    if name == "in_batch":
        positives = sb.TorchPositives(train, device)
        log_q = sb.item_log_q(train.item_counts(), device) if sampler.logq_correction else None
        task = sb.InBatch(positives.contains, log_q)

        def in_batch(model, u, p, _negs, l2, w):  # noqa: ANN001, ANN202
            return model.in_batch_loss(u, p, l2, task, w)

        return Objective(in_batch, lambda b: b - 1)
    if name == "hard":
        temp = {"t": sampler.temperature_at(0)}

        def hard(model, u, p, cands, l2, w):  # noqa: ANN001, ANN202
            negs = sb.hard_negatives(_pairs(model), u, cands, sampler.k, temp["t"], gen)
            return model.loss(u, p, negs, l2, None, w)

        def at_epoch(epoch: int = 0) -> None:
            temp["t"] = sampler.temperature_at(epoch)

        def logged() -> dict[str, float]:  # the hardness curriculum, when softmax sampling
            return {} if temp["t"] is None else {"temperature": float(temp["t"])}

        return Objective(hard, lambda b: sampler.k, at_epoch, logged)
    return _mixed(sampler, sb, device, n_positives, train, exclude, n_items, gen)


def redraw_exclusions(
    sampler: Any, train: Interactions, exclude: Interactions | None
) -> Interactions:
    """The CSR the ``mixed`` cap's redraws avoid: ``exclude`` when given, else
    ``sampler.exclude`` resolved from ``train`` (``train+valid`` needs ``exclude``)."""
    if exclude is not None:
        if (exclude.n_users, exclude.n_items) != (train.n_users, train.n_items):
            raise ValueError(
                f"exclude covers {exclude.n_users} users x {exclude.n_items} items, the "
                f"training positives {train.n_users} x {train.n_items}: build both on one split"
            )
        return exclude
    how = getattr(sampler, "exclude", "train")
    if how == "train":
        return train
    if how == "none":
        from negsamp.samplers.exact import no_exclusions

        return no_exclusions(train.n_users, train.n_items)
    raise ValueError(
        f"sampler {sampler.name!r} with max_item_share redraws negatives and exclude={how!r}: "
        "pass exclude= (the train+valid positives; the train stage resolves it)"
    )


def _mixed(sampler, sb, device, n_positives, train, exclude, n_items, gen) -> Objective:  # noqa: ANN001
    """Pool columns: ``candidates`` for the hard pick, then ``n_random`` random ones (the
    most any epoch of the hardness schedule uses); epoch e takes ``n_hard_at(e)`` hard ones
    and the first ``n_neg - n_hard_at(e)`` random columns."""
    c = sampler.candidates
    now = {"n_hard": sampler.n_hard_at(0)}
    cap = None
    if sampler.max_item_share is not None:
        cap = sb.ItemCap(n_items, sampler.max_item_share, n_positives * sampler.n_neg, device)
        excluded = sb.TorchPositives(redraw_exclusions(sampler, train, exclude), device)
    weights = None
    if sampler.base == "popularity":
        counts = torch.as_tensor(train.item_counts(), device=device, dtype=torch.float64)
        weights = counts.pow(sampler.alpha)  # the base sampler's (popularity_weights)

    def redraw(users: torch.Tensor, taken: torch.Tensor | None) -> torch.Tensor:
        """int64 [m]: one base draw per row, from the pool's candidate set minus ``taken``."""
        if weights is None:
            return sb.uniform_excluding_torch(excluded, users, 1, gen, taken=taken)[:, 0]
        return sb.weighted_excluding_torch(excluded, users, 1, weights, gen, taken=taken)[:, 0]

    def mixed(model, u, p, negs, l2, w):  # noqa: ANN001, ANN202
        n_hard = now["n_hard"]
        out = negs[:, c : c + sampler.n_neg - n_hard]
        if n_hard:
            hard = sb.hard_negatives(_pairs(model), u, negs[:, :c], n_hard, None, gen)
            out = sb.mix_negatives(hard, out)
        if cap is not None:
            out = cap.apply(
                out, lambda rows, taken: redraw(u[rows], taken), distinct=not sampler.replace
            )
        return model.loss(u, p, out, l2, None, w)

    seen = {"replaced": 0, "overflow": 0}

    def start(epoch: int = 0) -> None:
        now["n_hard"] = sampler.n_hard_at(epoch)
        if cap is not None:
            cap.reset()
            seen.update(replaced=cap.replaced, overflow=cap.overflow)

    def cap_stats() -> dict[str, float]:  # this epoch's counts (the cap's are cumulative)
        row = {"hard_fraction": now["n_hard"] / sampler.n_neg}  # the hardness curriculum
        if cap is not None:
            row["cap_replaced"] = float(cap.replaced - seen["replaced"])
            row["cap_overflow"] = float(cap.overflow - seen["overflow"])
        return row

    return Objective(mixed, lambda b: sampler.n_neg, start, cap_stats)


def _pairs(model: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The model's ``score`` as the hard samplers call it: users and items of one shape
    [B, C], each row one user (``users[:, None].expand_as(candidates)``)."""

    def score(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return model.score(users[:, 0], items) if users.dim() == 2 else model.score(users, items)

    return score


def pool_log_q(pool_negs: torch.Tensor, n_items: int) -> torch.Tensor:
    """float32 [n_items]: log of how often the pool drew each item as a negative (its
    sampler's empirical distribution; what sampled softmax's logQ correction needs)."""
    counts = torch.bincount(pool_negs.reshape(-1), minlength=n_items).float()
    return torch.log(counts.clamp_min(0.5) / max(float(counts.sum()), 1.0))
