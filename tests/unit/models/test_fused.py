"""The SDDMM/SpMM scoring path equals the plain gather, in value and gradient."""

from __future__ import annotations

import torch

from negsamp.models.fused import sampled_dot, squared_rows


def test_sampled_dot_matches_the_gather_with_repeats() -> None:
    g = torch.Generator().manual_seed(0)
    table = torch.randn(30, 6, generator=g, dtype=torch.float64, requires_grad=True)
    u = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    items = torch.randint(0, 30, (8, 5), generator=g)
    items[:, 1] = items[:, 0]  # a repeated item in a row
    upstream = torch.randn(8, 5, generator=g, dtype=torch.float64)
    (sampled_dot(u, table, items) * upstream).sum().backward()
    got = (u.grad.clone(), table.grad.clone())
    u.grad = table.grad = None
    want = torch.bmm(table[items], u.unsqueeze(2)).squeeze(2)
    assert torch.allclose(sampled_dot(u, table, items), want)
    (want * upstream).sum().backward()
    assert torch.allclose(got[0], u.grad) and torch.allclose(got[1], table.grad)


def test_squared_rows_counts_repeats_either_way() -> None:
    table = torch.arange(12.0).view(4, 3)
    idx = torch.tensor([[0, 0], [3, 1]])
    want = sum(float(table[i].pow(2).sum()) for i in (0, 0, 3, 1))
    assert squared_rows(table, idx).item() == want  # 4 rows <= 4 indices: by counts
    assert squared_rows(table, idx[:1, :1]).item() == float(table[0].pow(2).sum())  # gathered
