"""Issue 28: centres that fit. The centre table split over 2 gloo ranks gives the rows, the DSA loss (the same
seeded subset) and the Eq. 11 updates of the one table in one process."""

from __future__ import annotations

import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from facekit.losses import CentreTable, DSALoss
from facekit.losses.centres import ShardedCentreTable

C, S, D, B = 5, 6, 4, 5  # 11 centres: 6 + 5 rows per rank


def _batches():
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        x = torch.randn(2 * B, D, generator=g)
        labels = torch.tensor([0, -1, 3, -6, 4, 0, -2, 2, -1, 1]) if step % 2 == 0 else \
            torch.tensor([1, 1, -3, -4, 0, 2, -5, -6, 4, 3])
        yield step, x, labels


def _rank(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    table = ShardedCentreTable(C, S, D, rank, 2)
    dsa = DSALoss(table, p=0.5)
    losses = []
    for step, x, labels in _batches():
        mine = slice(rank * B, (rank + 1) * B)
        losses.append(dsa(x[mine], labels[mine], torch.Generator().manual_seed(step)))
        table.update(x[mine], labels[mine], lr=0.5)
    full = table.rows(torch.arange(C + S))
    torch.save({"losses": torch.stack(losses), "rows": full, "local": table.centres[:-1].clone()}, f"{out}/r{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_hold_half_the_table_and_give_the_one_tables_numbers():
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_rank, args=(f"file://{os.path.join(tmp, 'init')}", tmp), nprocs=2, join=True)
        ranks = [torch.load(f"{tmp}/r{r}.pt", weights_only=True) for r in range(2)]
    table = CentreTable(C, S, D)
    dsa = DSALoss(table, p=0.5)
    losses = []
    for step, x, labels in _batches():
        # one process sees the whole batch; each rank's loss is over its half: compare the mean of the two
        halves = [dsa(x[r * B:(r + 1) * B], labels[r * B:(r + 1) * B], torch.Generator().manual_seed(step))
                  for r in range(2)]
        losses.append(torch.stack(halves))
        table.update(x, labels, lr=0.5)
    for r, got in enumerate(ranks):
        torch.testing.assert_close(got["losses"], torch.stack(losses)[:, r], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got["rows"], table.centres, rtol=1e-6, atol=1e-6)
    assert [len(g["local"]) for g in ranks] == [6, 5]
    torch.testing.assert_close(torch.cat([g["local"] for g in ranks]), table.centres, rtol=1e-6, atol=1e-6)
    assert table.centres.abs().sum() > 0
