"""Label smoothing for sequence samples (SeqFace Eq. 5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lsr_cross_entropy(logits_bc: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """Eq. 5, averaged over the batch: L = -(1 - Z) log p(y) - (Z / C) sum_i log p(i).

    Z = 0 for identity samples (label >= 0: ordinary cross-entropy); Z = 1 for sequence samples (label < 0: the
    target is uniform over the C identity classes, as in LSRO)."""
    logp_bc = F.log_softmax(logits_bc.float(), dim=1)
    is_seq_b = labels_b < 0
    target_b = labels_b.clamp(min=0)
    nll_b = -logp_bc.gather(1, target_b[:, None]).squeeze(1)
    uniform_b = -logp_bc.mean(dim=1)
    return torch.where(is_seq_b, uniform_b, nll_b).mean()
