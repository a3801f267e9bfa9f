"""Partial FC (An et al., "Killing Two Birds with One Stone", arXiv:2203.15565; insightface's
``partial_fc_v2``): the chief head's class weights split over the ranks, with negative classes sampled.

Each rank holds the contiguous class range ``shard_range(C, rank, world)`` of W (C, d): a plain parameter, never
all-reduced (a 2 M x 512 head is 4 GB; DDP would all-reduce it every step). Each step the embeddings and labels
of every rank are gathered (B_total rows), each rank computes logits against its classes only, and the softmax
cross-entropy is computed across ranks: the row max and the sum of exponentials are all-reduced. SeqFace's LSR
(Eq. 5) carries over: a sequence sample's uniform target over the identity classes needs the sum of its logits
over all classes, a local sum plus one all-reduce. With ``sample_rate`` < 1 each rank keeps the positives of the
global batch in its range and fills up to ``sample_rate`` x its classes with uniformly drawn negatives.

The loss is the global batch's mean on every rank. Its gradient reaches a rank's embeddings through the gather
(every rank's contribution summed, times ``world``, because DDP averages the backbone's gradients over the ranks),
so the backbone trains as with the full head in one process (tested with 2 gloo ranks)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from facekit.losses.collectives import all_reduce, distributed, gather
from facekit.losses.heads import HEADS, CosineHead, SoftmaxHead


def shard_range(num_classes: int, rank: int, world: int) -> tuple[int, int]:
    """(first class, class count) of ``rank``: ``num_classes // world`` each, the first ``num_classes % world``
    ranks one more (insightface's split)."""
    base, extra = divmod(num_classes, world)
    return base * rank + min(rank, extra), base + (rank < extra)


class _Gather(torch.autograd.Function):
    """(B, d) on each rank -> (world x B, d) everywhere; backward: this rank's rows of the summed gradients of all
    ranks, times ``world`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, x_bd: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x_bd) for _ in range(world)]
        dist.all_gather(parts, x_bd.contiguous())
        ctx.rank, ctx.world, ctx.rows = rank, world, x_bd.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad_nd: torch.Tensor) -> torch.Tensor:
        grad_nd = grad_nd.contiguous()
        dist.all_reduce(grad_nd)
        return grad_nd[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows] * ctx.world


class _ShardedLSRCrossEntropy(torch.autograd.Function):
    """Eq. 5 over classes spread across ranks: logits (N, k) of this rank's (sampled) classes; ``target_n`` the
    local column of an identity sample's class (-1: on another rank, or a sequence sample); ``is_seq_n`` the
    sequence samples; ``total`` the classes over all ranks. Returns the mean loss over the N samples."""

    @staticmethod
    def forward(ctx, logits_nk: torch.Tensor, target_n: torch.Tensor, is_seq_n: torch.Tensor, total: int):
        row_max_n = logits_nk.max(dim=1).values
        all_reduce(row_max_n, dist.ReduceOp.MAX)
        exp_nk = torch.exp(logits_nk - row_max_n[:, None])
        sum_exp_n = exp_nk.sum(dim=1)
        all_reduce(sum_exp_n)
        here_n = target_n >= 0
        target_logit_n = torch.where(here_n, logits_nk.gather(1, target_n.clamp(min=0)[:, None]).squeeze(1), 0.0)
        sums = torch.stack([target_logit_n, logits_nk.sum(dim=1)])
        all_reduce(sums)
        log_z_n = row_max_n + torch.log(sum_exp_n)
        loss_n = torch.where(is_seq_n, log_z_n - sums[1] / total, log_z_n - sums[0])
        ctx.save_for_backward(exp_nk / sum_exp_n[:, None], target_n, is_seq_n)
        ctx.total = total
        return loss_n.mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        prob_nk, target_n, is_seq_n = ctx.saved_tensors
        g_nk = prob_nk.clone()
        rows = torch.nonzero(target_n >= 0).squeeze(1)
        g_nk[rows, target_n[rows]] -= 1.0                         # identity samples: p - one_hot
        g_nk[is_seq_n] -= 1.0 / ctx.total                          # sequence samples: p - uniform (Eq. 5)
        return g_nk * (grad / prob_nk.shape[0]), None, None, None


class PartialFC(nn.Module):
    """The chief head ``name`` (``HEADS``: a cosine-margin head or softmax) over this rank's class shard, its loss
    (Eq. 5 with LSR) computed across ranks. ``forward(x_bd, labels_b)`` takes this rank's embeddings and labels
    (-1..-S: sequence samples) and returns (loss, hits, identity samples) of the global batch (hits: identity
    samples whose largest logit over all classes is their own class, as the full head's accuracy counts)."""

    def __init__(self, name: str, dim: int, num_classes: int, rank: int, world: int, sample_rate: float = 1.0,
                 **head_kwargs) -> None:
        super().__init__()
        self.start, self.num_local = shard_range(num_classes, rank, world)
        self.num_classes, self.sample_rate, self.rank = num_classes, sample_rate, rank
        self.head = HEADS.get(name)(dim, self.num_local, **head_kwargs)
        if not isinstance(self.head, (CosineHead, SoftmaxHead)):
            raise TypeError(f"Partial FC takes a cosine-margin head or softmax, not {type(self.head).__name__}")
        self.generator = torch.Generator()

    def set_step(self, step: int) -> None:
        if hasattr(self.head, "set_step"):
            self.head.set_step(step)
        self.generator.manual_seed(1_000_003 * step + self.rank)  # each rank draws its own negatives

    def sample(self, labels_n: torch.Tensor) -> torch.Tensor:
        """The local classes used this step (sorted): every positive of the global batch in this rank's range, then
        uniform negatives up to ``sample_rate`` x the shard (all classes at 1.0)."""
        k = int(self.sample_rate * self.num_local)
        if k >= self.num_local:
            return torch.arange(self.num_local, device=labels_n.device)
        local_n = labels_n - self.start
        pos = local_n[(labels_n >= 0) & (local_n >= 0) & (local_n < self.num_local)]
        score = torch.rand(self.num_local, generator=self.generator).to(labels_n.device)
        score[pos] = 2.0  # positives first
        k = max(k, int(torch.unique(pos).numel()))
        return torch.topk(score, k).indices.sort().values

    def weights(self, idx_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(self.head, SoftmaxHead):
            return self.head.fc.weight[idx_k], self.head.fc.bias[idx_k]
        return self.head.weight[idx_k], None

    def forward(self, x_bd: torch.Tensor,
                labels_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if distributed():
            x_nd, labels_n = _Gather.apply(x_bd), gather(labels_b)
        else:
            x_nd, labels_n = x_bd, labels_b
        idx_k = self.sample(labels_n)
        column = torch.full((self.num_local,), -1, dtype=torch.long, device=labels_n.device)
        column[idx_k] = torch.arange(len(idx_k), device=labels_n.device)
        local_n = labels_n - self.start
        mine_n = (labels_n >= 0) & (local_n >= 0) & (local_n < self.num_local)
        target_n = torch.where(mine_n, column[local_n.clamp(0, self.num_local - 1)], -1)
        w_kd, b_k = self.weights(idx_k)
        with torch.autocast(device_type=x_nd.device.type, enabled=False):
            if b_k is not None:
                logits_nk = F.linear(x_nd.float(), w_kd.float(), b_k.float())
            else:  # the head's own margin on the target column (on this rank only), as CosineHead.forward does
                cos_nk = F.linear(F.normalize(x_nd.float(), dim=1), F.normalize(w_kd.float(), dim=1)).clamp(-1, 1)
                t_n = target_n.clamp(min=0)
                cos_t_n = cos_nk.gather(1, t_n[:, None]).squeeze(1)
                new_t_n = torch.where(target_n >= 0, self.head.margin(cos_t_n).float(), cos_t_n)
                logits_nk = self.head.scale * cos_nk.scatter(1, t_n[:, None], new_t_n[:, None])
        total = self.num_classes  # the classes over all ranks this step (Eq. 5's C for sequence samples)
        if len(idx_k) < self.num_local or self.sample_rate < 1:
            count = torch.tensor(float(len(idx_k)), device=x_nd.device)
            all_reduce(count)
            total = float(count)
        loss = _ShardedLSRCrossEntropy.apply(logits_nk, target_n, labels_n < 0, float(total))
        return loss, *self._hits(logits_nk.detach(), idx_k, labels_n)

    def _hits(self, logits_nk: torch.Tensor, idx_k: torch.Tensor,
              labels_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        best_n, col_n = logits_nk.max(dim=1)
        top_n = best_n.clone()
        all_reduce(top_n, dist.ReduceOp.MAX)
        hit_n = ((best_n == top_n) & (idx_k[col_n] + self.start == labels_n) & (labels_n >= 0)).float()
        all_reduce(hit_n, dist.ReduceOp.MAX)  # the rank that holds the winning class says so
        return hit_n.sum(), (labels_n >= 0).sum()
