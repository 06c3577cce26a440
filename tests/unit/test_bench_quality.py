"""bench/quality.py (issue #18): EASE's closed form, and the --quick run end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from bench import peers

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "movielens-100k" / "u.data"


def test_ease_recommends_the_items_seen_together_and_never_the_item_itself() -> None:
    # items 0-1 and 2-3 are always consumed together; item 4 by everyone
    rows = [[0, 1, 4], [0, 1], [2, 3, 4], [2, 3], [0, 1, 4], [2, 3]]
    users = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    x = sp.csr_matrix((np.ones(users.size), (users, np.concatenate(rows))), shape=(6, 5))
    s = peers.ease(x, seed=0, lam=0.5)
    query = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 5))
    b = s.score_all(torch.arange(6))  # x_u B for every user of the training matrix
    assert b.shape == (6, 5)
    # user 1 has items 0 and 1: 0 predicts 1 and 1 predicts 0, nothing predicts 2 or 3
    assert b[1, 2] < b[1, 0] and b[1, 3] < b[1, 1]
    single = peers.ease(sp.vstack([x, query]).tocsr(), seed=0, lam=0.5).score_all(torch.tensor([6]))
    assert single[0].argmax().item() == 1 and single[0, 0] == 0.0  # diag(B) = 0
    assert torch.equal(s.score(torch.tensor([1]), torch.tensor([[0, 2]])), b[1:2, [0, 2]])


@pytest.mark.full
@pytest.mark.data
@pytest.mark.skipif(not DATA.is_file(), reason="needs ../shared/data/movielens-100k")
def test_quick_run_prints_every_method_the_verdict_and_the_protocol_check(tmp_path: Path) -> None:
    from bench import quality

    out = tmp_path / "q.md"
    assert quality.main(["--quick", "--out", str(out)]) == 0
    text = out.read_text()
    for name in [
        *quality.PEERS,
        *quality.NEGSAMP,
        "implicit ALS (no recency)",
        "EASE (no recency)",
    ]:
        assert f"| {name} |" in text, name
    assert "- sampled_ndcg_10: negsamp's best is" in text
    assert "- full_ndcg_10: negsamp's best is" in text
    assert "The registry gate uses `sampled_ndcg_10` (the sampled protocol)" in text
