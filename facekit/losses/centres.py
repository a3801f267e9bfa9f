"""The centre table shared by the centre loss and the DSA loss, its update (SeqFace Eq. 11) and the centre loss
(Eq. 2).

Centres are a buffer, not a parameter: the optimiser never sees them (no weight decay, no momentum) and the loss
gradient flows only to the features. Under DistributedDataParallel the update gathers every rank's features and
labels first, so all ranks apply the same update to identical tables.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def centre_index(labels_b: torch.Tensor, num_identities: int) -> torch.Tensor:
    """Identity label y >= 0 -> centre y; sequence label l < 0 -> centre C - 1 - l (after the C identities)."""
    return torch.where(labels_b >= 0, labels_b, num_identities - 1 - labels_b)


def _gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over all ranks (identity when not distributed). Equal batch sizes per rank assumed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class CentreTable(nn.Module):
    """``centres`` (N, d), N = C identities + S sequences, initialised at zero (as the reference code)."""

    def __init__(self, num_identities: int, num_sequences: int, dim: int) -> None:
        super().__init__()
        self.num_identities, self.num_sequences = num_identities, num_sequences
        self.register_buffer("centres", torch.zeros(num_identities + num_sequences, dim))

    @property
    def num_centres(self) -> int:
        return self.centres.shape[0]

    def index(self, labels_b: torch.Tensor) -> torch.Tensor:
        return centre_index(labels_b, self.num_identities)

    @torch.no_grad()
    def update(self, x_bd: torch.Tensor, labels_b: torch.Tensor, lr: float) -> None:
        """Eq. 11: delta c_n = -sum_{k: y_k = n} (x_k - c_n) / 2 / (1 + #{k: y_k = n}); c_n <- c_n - lr * delta c_n.
        Only the centres of the batch's labels move (a sparse update: cost O(B d), not O(N d))."""
        x_bd, labels_b = _gather(x_bd.detach().float()), _gather(labels_b)
        idx_b = self.index(labels_b)
        uniq_u, inv_b = torch.unique(idx_b, return_inverse=True)
        c_ud = self.centres[uniq_u]
        diff_sum_ud = torch.zeros_like(c_ud).index_add_(0, inv_b, x_bd - c_ud[inv_b])
        count_u = torch.bincount(inv_b, minlength=len(uniq_u)).to(c_ud.dtype)
        delta_ud = -(diff_sum_ud / 2) / (1 + count_u[:, None])
        self.centres[uniq_u] = c_ud - lr * delta_ud


class CentreLoss(nn.Module):
    """Centre loss (Wen et al.; SeqFace Eq. 2) averaged over the batch: L_C = 1/(2K) sum_k ||x_k - c_{y_k}||^2.
    Identity and sequence samples are treated alike, each pulled to its own centre."""

    def __init__(self, table: CentreTable) -> None:
        super().__init__()
        self.table = table

    def forward(self, x_bd: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
        c_bd = self.table.centres[self.table.index(labels_b)]
        return 0.5 * (x_bd.float() - c_bd).pow(2).sum(dim=1).mean()
