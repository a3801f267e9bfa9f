"""Losses of the Face Aggregation Network (section 3.2). Features are the frozen extractor's raw (unnormalised)
outputs; ``f_a`` is the aggregated face's feature, ``f_p`` a positive (same person, other video), ``f_n`` a
negative (other person), ``f_in`` the set's input faces (B, N, d) with ``mask`` (B, N) marking real members.
All losses are averaged over the batch.

    L_G = l_dis L_dis + l_rec L_rec + l_adv L_adv^G + l_tv L_tv      (Eq. 5; paper: 1, 0.5, 1, 1e-4)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facekit.losses.collectives import gather


def _sqdist(a_bd: torch.Tensor, b_bd: torch.Tensor) -> torch.Tensor:
    return (a_bd - b_bd).pow(2).sum(dim=-1)


def discriminative_loss(f_a: torch.Tensor, f_p: torch.Tensor, f_n: torch.Tensor, f_in: torch.Tensor,
                        mask: torch.Tensor | None = None, beta: float = 32.0) -> torch.Tensor:
    """Eq. 6-7: (||f_A - f_P||^2 - alpha)_+ + (beta - ||f_A - f_N||^2)_+ with alpha = min_n ||f_In - f_P||^2:
    A must be closer to P than the closest input frame is, and farther than beta from N."""
    d_in_bn = _sqdist(f_in, f_p[:, None])
    if mask is not None:
        d_in_bn = d_in_bn.masked_fill(~mask, float("inf"))
    alpha_b = d_in_bn.amin(dim=1)                                                         # Eq. 7
    return (F.relu(_sqdist(f_a, f_p) - alpha_b) + F.relu(beta - _sqdist(f_a, f_n))).mean()  # Eq. 6


def set_mean(f_in: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real members of each set: (B, N, d) -> (B, d)."""
    if mask is None:
        return f_in.mean(dim=1)
    w = mask.to(f_in.dtype)[..., None]
    return (f_in * w).sum(dim=1) / w.sum(dim=1)


def reconstruction_avg_loss(f_a: torch.Tensor, f_in: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 8 (DAN): ||f_A - (1/N) sum_n f_In||^2."""
    return _sqdist(f_a, set_mean(f_in, mask)).mean()


class IdentityCentres(nn.Module):
    """Per-identity feature centres for L_rec^cen (Eq. 9) and their running update (Eq. 10).

    Eq. 10 is printed as c = (1 - r) c - r/(N+1) [f_P + sum f_In]; the minus sign would push the centre away from
    its own samples, so facekit reads it as the exponential moving average it describes:
    c <- (1 - r) c + r/(N+1) [f_P + sum_n f_In], r = 0.5. A centre not seen before starts at its first sample mean
    (instead of decaying from zero). Sets of one identity in a batch update it in batch order; under DDP the
    samples of all ranks are gathered first so every rank holds the same centres."""

    def __init__(self, num_identities: int, dim: int, rate: float = 0.5) -> None:
        super().__init__()
        self.rate = rate
        self.register_buffer("centres", torch.zeros(num_identities, dim))
        self.register_buffer("seen", torch.zeros(num_identities, dtype=torch.bool))

    def loss(self, f_a: torch.Tensor, identity_b: torch.Tensor) -> torch.Tensor:
        """Eq. 9: ||f_A^j - c^j||^2 for samples whose centre has been seen, 0 for the others, averaged over the
        batch (a fixed count, so DDP's gradient average equals one process). The loss runs before this step's
        Eq. 10 update, and an unseen centre is still the zero vector: counting it would pull f_A towards 0 (a
        loss of ||f_A||^2, 400 for a feature of norm 20), which with thousands of identities would dominate the
        first thousand steps."""
        seen_b = self.seen[identity_b]
        return (_sqdist(f_a, self.centres[identity_b]) * seen_b).mean()

    @torch.no_grad()
    def update(self, f_p: torch.Tensor, f_in: torch.Tensor, identity_b: torch.Tensor,
               mask: torch.Tensor | None = None, ok: torch.Tensor | None = None) -> None:
        """Eq. 10 for the batch, in batch order, as one closed form (no host sync): an identity with samples
        s_1..s_k gets c <- (1 - r)^k c + sum_i r (1 - r)^(k - i) s_i, or, unseen, its first sample in place of
        (1 - r)^k c + r s_1. ``ok`` (0-d bool on the device) false: nothing moves (a skipped step)."""
        n_b = f_in.shape[1] if mask is None else mask.sum(dim=1)
        total = f_p + (f_in.sum(dim=1) if mask is None else (f_in * mask[..., None]).sum(dim=1))
        n_b1 = torch.as_tensor(n_b, device=total.device).reshape(-1, 1)
        sample_bd = total.float() / (n_b1 + 1)  # [f_P + sum f_In] / (N+1)
        sample_bd, identity_b = gather(sample_bd), gather(identity_b)
        same_bb = identity_b[:, None] == identity_b[None, :]
        order_bb = torch.arange(len(identity_b), device=identity_b.device)
        later_b = (same_bb & (order_bb[None, :] > order_bb[:, None])).sum(1)  # samples of b's identity after b
        first_b = ~(same_bb & (order_bb[None, :] < order_bb[:, None])).any(1)
        seen_b, r = self.seen[identity_b], self.rate
        weight_b = (1 - r) ** later_b.double() * torch.where(seen_b | ~first_b, r, 1.0)
        decay_b1 = (1 - r) ** same_bb.sum(1, keepdim=True).double()
        base_bd = torch.where(seen_b[:, None], decay_b1 * self.centres[identity_b], 0.0)
        new_bd = (base_bd + same_bb.double() @ (weight_b[:, None] * sample_bd.double())).to(self.centres.dtype)
        if ok is not None:
            new_bd = torch.where(ok, new_bd, self.centres[identity_b])
        self.centres[identity_b] = new_bd[same_bb.to(torch.uint8).argmax(1)]  # one value per identity
        self.seen[identity_b] = seen_b | (True if ok is None else ok)


def adversarial_g_loss(logit_a: torch.Tensor) -> torch.Tensor:
    """Eq. 11: -log D(A), D = sigmoid(logit) (softplus form, stable)."""
    return F.softplus(-logit_a).mean()


def adversarial_d_loss(logit_a: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Eq. 12: -log(1 - D(A)) - log D(P)."""
    return (F.softplus(logit_a) + F.softplus(-logit_p)).mean()


def total_variation_loss(image_b3hw: torch.Tensor) -> torch.Tensor:
    """Eq. 13: sum of squared differences between horizontally and vertically adjacent pixels (all channels),
    per image, averaged over the batch. Pixels are in the aggregator's [-1, 1] scale."""
    dx = (image_b3hw[..., :, 1:] - image_b3hw[..., :, :-1]).pow(2).sum(dim=(1, 2, 3))
    dy = (image_b3hw[..., 1:, :] - image_b3hw[..., :-1, :]).pow(2).sum(dim=(1, 2, 3))
    return (dx + dy).mean()
