"""Data-parallel training's arithmetic (issue #16, item 4), without Ray: the workers' rows
of a batch partition it, and the average of their share-weighted loss gradients (what DDP's
all-reduce computes) is the gradient of the whole batch's loss."""

from __future__ import annotations

import pytest
import torch

from negsamp import config
from negsamp.cluster.training import Replica
from negsamp.models import build_model


@pytest.mark.parametrize(("batch", "world"), [(512, 2), (511, 2), (10, 3), (1, 2)])
def test_worker_rows_partition_the_batch_and_average_to_its_gradient(
    batch: int, world: int
) -> None:
    cpu = torch.device("cpu")
    model = build_model(config.Config().model.active, 50, 40, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    users, pos = (
        torch.randint(0, 50, (batch,), generator=g),
        torch.randint(0, 40, (batch,), generator=g),
    )
    negs = torch.randint(0, 40, (batch, 4), generator=g)
    idx = torch.randperm(batch, generator=g)

    def grads(rows: torch.Tensor, weight: float) -> list[torch.Tensor]:
        model.zero_grad()
        (model.loss(users[rows], pos[rows], negs[rows], 0.01) * weight).backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    shares = [Replica(r, world, cpu).rows(idx) for r in range(world)]
    kept = torch.cat([rows for rows, w in shares if w > 0])
    assert sorted(kept.tolist()) == sorted(idx.tolist())  # every row once, by one worker
    assert sum(w for _, w in shares) == pytest.approx(world)
    whole = grads(idx, 1.0)
    parts = [grads(rows, w) for rows, w in shares]
    for full, *each in zip(whole, *parts, strict=True):
        mean = torch.stack(each).mean(0)  # float32 sums in another order: ~1e-7 apart
        assert float((mean - full).abs().max()) <= 1e-5 * float(full.abs().max())
