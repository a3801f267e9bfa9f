"""Issue 28: Partial FC. Two gloo ranks, each with half the global batch and its shard of the class weights, give
the loss and the gradients of the full head in one process (the head's own forward + Eq. 5's LSR), for a margin
head and softmax; with sample_rate 0.1 the sampled classes always hold the batch's positives."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from facekit.losses import build_head, lsr_cross_entropy
from facekit.losses.partial_fc import PartialFC, shard_range

C, D, B = 7, 5, 6  # classes (split 4 + 3), feature size, samples per rank


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * B, D, generator=g)
    labels = torch.tensor([0, 3, -1, 6, 2, 2, 5, -2, 1, 4, 6, -1])  # identities and sequence samples
    return x, labels


def _rank(rank: int, init: str, name: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    torch.manual_seed(1)
    full = build_head(name, D, C)
    x, labels = _data()
    start, n = shard_range(C, rank, 2)
    pfc = PartialFC(name, D, C, rank, 2)
    with torch.no_grad():
        if name == "softmax":
            pfc.head.fc.weight.copy_(full.fc.weight[start:start + n])
            pfc.head.fc.bias.copy_(full.fc.bias[start:start + n])
        else:
            pfc.head.weight.copy_(full.weight[start:start + n])
    x_mine = x[rank * B:(rank + 1) * B].clone().requires_grad_(True)
    loss, hits, ids = pfc(x_mine, labels[rank * B:(rank + 1) * B])
    loss.backward()
    grads = {k: v.grad for k, v in pfc.head.named_parameters()}
    # sampling: 100 classes at 0.1, positives always kept
    big = PartialFC("arcface", D, 100, rank, 2, sample_rate=0.1)
    big.set_step(3)
    lab = torch.tensor([3, 97, 51, -1, 10, 77, 50, 49, 3, 99, -2, 0])
    idx = big.sample(lab)
    s0, n0 = shard_range(100, rank, 2)
    pos = sorted({int(v) - s0 for v in lab if v >= 0 and s0 <= v < s0 + n0})
    sampled_loss, *_ = big(torch.randn(B, D), lab[rank * B:(rank + 1) * B])
    torch.save({"loss": loss.detach(), "hits": hits, "ids": ids, "x_grad": x_mine.grad, "grads": grads, "start": start,
                "n": n,
                "idx": idx, "pos": pos, "sampled_loss": sampled_loss.detach()}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("name", ["arcface", "l2sphereface", "softmax"])
def test_two_ranks_give_the_full_heads_loss_and_gradients(name):
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_rank, args=(f"file://{os.path.join(tmp, 'init')}", name, tmp), nprocs=2, join=True)
        ranks = [torch.load(f"{tmp}/rank{r}.pt", weights_only=False) for r in range(2)]
    torch.manual_seed(1)
    full = build_head(name, D, C)
    x, labels = _data()
    x = x.clone().requires_grad_(True)
    logits = full(x, labels)
    loss = lsr_cross_entropy(logits, labels)
    loss.backward()
    hits = int(((logits.argmax(1) == labels) & (labels >= 0)).sum())
    for r, got in enumerate(ranks):
        torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
        assert (int(got["hits"]), int(got["ids"])) == (hits, 9)  # the full head's accuracy counts
        # the gather's backward multiplies by world: DDP then averages the backbone's gradients over the 2 ranks
        torch.testing.assert_close(got["x_grad"] / 2, x.grad[r * B:(r + 1) * B], rtol=1e-5, atol=1e-6)
        s, n = got["start"], got["n"]
        for k, g in got["grads"].items():
            ref = dict(full.named_parameters())[k].grad
            torch.testing.assert_close(g, ref[s:s + n], rtol=1e-5, atol=1e-6)
    assert [g["n"] for g in ranks] == [4, 3]
    for got in ranks:
        assert set(got["pos"]) <= set(got["idx"].tolist()) and len(got["idx"]) >= 5  # 0.1 x 50 classes per rank
        assert torch.isfinite(got["sampled_loss"])


def test_shard_ranges_cover_every_class_once():
    for c, w in ((7, 2), (100, 8), (3, 4), (360_000, 8)):
        ranges = [shard_range(c, r, w) for r in range(w)]
        assert ranges[0][0] == 0 and all(a[0] + a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert sum(n for _, n in ranges) == c and max(n for _, n in ranges) - min(n for _, n in ranges) <= 1


def test_one_process_is_the_full_head():
    """Without a process group, Partial FC at sample_rate 1 is the head itself (the trainer's single-GPU case)."""
    torch.manual_seed(1)
    full = build_head("cosface", D, C)
    pfc = PartialFC("cosface", D, C, 0, 1)
    with torch.no_grad():
        pfc.head.weight.copy_(full.weight)
    x, labels = _data()
    loss, hits, ids = pfc(x, labels)
    logits = full(x, labels)
    torch.testing.assert_close(loss, lsr_cross_entropy(logits, labels))
    assert int(hits) == int(((logits.argmax(1) == labels) & (labels >= 0)).sum()) and int(ids) == 9
