"""Discriminative Sequence Agent loss (SeqFace section 3.3, Eq. 6-10).

    d_kn = ||x_k - c_n||^2 / 4                                            (Eq. 6; Eq. 7 when normalised)
    L_kn = d_kn                                  n = y_k
         = max(alpha d_{k,y_k} - d_kn + beta, 0) n != y_k                 (Eq. 8)
    L_D  = 1/K sum_k [ lambda L_{k,y_k} + (1 - lambda) / M sum_{n in S, n != y_k} L_kn ]   (Eq. 9)

S is the Bernoulli-sampled centre subset. As in the reference code it is one subset of M = max(1, floor(N p))
centre ids drawn without replacement per step and shared by the batch, and M stands for (N - 1) p. A sequence
sample is pushed only from identity centres (pairs sequence sample / sequence centre are skipped); an identity
sample is pushed from all sampled centres. The gradient (Eq. 10) comes from autograd; the centres move by Eq. 11
(``CentreTable.update``). Only B x M distances are formed, never B x N, so N = 1 M centres is cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facekit.losses.centres import CentreTable


def sample_centres(num_centres: int, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``m`` distinct centre ids out of ``num_centres``, uniformly; O(m) unless m is a large share of N."""
    if m * 4 >= num_centres:
        return torch.randperm(num_centres, generator=generator)[:m]
    ids = torch.unique(torch.randint(num_centres, (m + m // 8 + 8,), generator=generator))
    while len(ids) < m:  # rare: collisions ate the slack
        ids = torch.unique(torch.cat([ids, torch.randint(num_centres, (m,), generator=generator)]))
    return ids[torch.randperm(len(ids), generator=generator)[:m]]


class DSALoss(nn.Module):
    def __init__(self, table: CentreTable, lambda_: float = 0.5, alpha: float = 2.0, beta: float = 1.0,
                 p: float = 0.001, normalise: bool = False) -> None:
        super().__init__()
        self.table, self.lambda_, self.alpha, self.beta, self.p = table, lambda_, alpha, beta, p
        self.normalise = normalise  # Eq. 7 (angular) instead of Eq. 6 (Euclidean, the paper's face experiments)

    @property
    def subset_size(self) -> int:
        return max(1, int(self.table.num_centres * self.p))

    def forward(self, x_bd: torch.Tensor, labels_b: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        x_bd = x_bd.float()
        y_b = self.table.index(labels_b)
        subset_m = sample_centres(self.table.num_centres, self.subset_size, generator).to(x_bd.device)
        c_y_bd, c_s_md = self.table.rows(y_b), self.table.rows(subset_m)
        if self.normalise:
            x_bd, c_y_bd, c_s_md = F.normalize(x_bd, dim=1), F.normalize(c_y_bd, dim=1), F.normalize(c_s_md, dim=1)
        d_pull_b = (x_bd - c_y_bd).pow(2).sum(dim=1) / 4                                      # Eq. 6, n = y_k
        d_bm = (x_bd.pow(2).sum(1, keepdim=True) - 2 * x_bd @ c_s_md.T + c_s_md.pow(2).sum(1)) / 4  # Eq. 6, n in S
        push_bm = F.relu(self.alpha * d_pull_b[:, None] - d_bm + self.beta)                   # Eq. 8, n != y_k
        is_seq_sample_b = labels_b < 0
        is_seq_centre_m = subset_m >= self.table.num_identities
        keep_bm = (subset_m[None, :] != y_b[:, None]) & ~(is_seq_sample_b[:, None] & is_seq_centre_m[None, :])
        push_b = (push_bm * keep_bm).sum(dim=1) / len(subset_m)
        return (self.lambda_ * d_pull_b + (1 - self.lambda_) * push_b).mean()                  # Eq. 9
