"""Chief classification heads: logits (B, C) from features (B, d) and labels (B,).

Every head puts its margin on the target logit of identity samples only; sequence samples (label < 0) get the
plain logits, so Eq. 5's uniform target applies to them (SeqFace section 3.2). The loss on top is
``facekit.losses.lsr_cross_entropy``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from facekit.registry import Registry

HEADS: Registry[type[nn.Module]] = Registry("chief loss")  # name -> head class (dim, num_classes, **kwargs)


@HEADS.register("softmax")
class SoftmaxHead(nn.Module):
    """Plain fully connected layer, logits = W x + b (SeqFace Table 1, models I, III-VI)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x_bd: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
        return self.fc(x_bd)


class CosineHead(nn.Module, ABC):
    """Normalised class weights W (C, d) and normalised features: cos(theta) (B, C), then a target-logit margin."""

    def __init__(self, dim: int, num_classes: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale

    @abstractmethod
    def margin(self, cos_b: torch.Tensor) -> torch.Tensor:
        """Target cos(theta) (B,) -> the target logit before scaling (each subclass's margin)."""

    def forward(self, x_bd: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) in float32 whatever the input dtype or autocast: under CUDA autocast ``F.linear`` gives
        float16 (cosines above ~0.99976 round to 1) while ``acos`` / ``cos`` run in float32, and the margin
        (``scatter`` of float32 into float16) would fail or lose the margin."""
        with torch.autocast(device_type=x_bd.device.type, enabled=False):
            cos_bc = F.linear(F.normalize(x_bd.float(), dim=1), F.normalize(self.weight.float(), dim=1)).float()
            cos_bc = cos_bc.clamp(-1.0, 1.0)
            is_id_b = labels_b >= 0
            target_b = labels_b.clamp(min=0)
            cos_t_b = cos_bc.gather(1, target_b[:, None]).squeeze(1)
            new_t_b = torch.where(is_id_b, self.margin(cos_t_b).float(), cos_t_b)
            logits_bc = cos_bc.scatter(1, target_b[:, None], new_t_b[:, None])
            return self.scale * logits_bc


@HEADS.register("l2sphereface")
class L2SphereFaceHead(CosineHead):
    """L2-SphereFace (A-Softmax with the feature normalised and scaled by s, section 3.2).

    Target logit s * (psi(theta) + lambda cos(theta)) / (1 + lambda), with psi(theta) = (-1)^k cos(m theta) - 2k
    for theta in [k pi/m, (k+1) pi/m] (SphereFace Eq. 7); others s * cos(theta). SeqFace: s = 32, m = 4.

    lambda follows SphereFace's published schedule, lambda_t = max(lambda_min, base (1 + gamma t)^-power) with
    base 1000, gamma 0.12, power 1, lambda_min 5, so training from scratch starts as plain normalised softmax and
    reaches the margin after ~1,700 steps. The SeqFace release fine-tunes a trained baseline with lambda fixed at
    5: set ``lambda_base: 5`` for that. ``set_step`` is called by the trainer every step."""

    def __init__(self, dim: int, num_classes: int, scale: float = 32.0, m: int = 4, lambda_min: float = 5.0,
                 lambda_base: float = 1000.0, lambda_gamma: float = 0.12, lambda_power: float = 1.0) -> None:
        super().__init__(dim, num_classes, scale)
        self.m, self.lambda_min = m, lambda_min
        self.lambda_base, self.lambda_gamma, self.lambda_power = lambda_base, lambda_gamma, lambda_power
        self.lambda_ = lambda_min
        self.set_step(0)

    def set_step(self, step: int) -> None:
        self.lambda_ = max(self.lambda_min, self.lambda_base * (1 + self.lambda_gamma * step) ** -self.lambda_power)

    def margin(self, cos_b: torch.Tensor) -> torch.Tensor:
        theta_b = torch.acos(cos_b.clamp(-1 + 1e-7, 1 - 1e-7))
        k_b = torch.floor(self.m * theta_b / math.pi)
        psi_b = (1.0 - 2.0 * (k_b % 2)) * torch.cos(self.m * theta_b) - 2.0 * k_b
        return (psi_b + self.lambda_ * cos_b) / (1.0 + self.lambda_)


@HEADS.register("arcface")
class ArcFaceHead(CosineHead):
    """ArcFace (Deng et al.): cos(theta + m) on the target, s = 64, m = 0.5. Where theta + m > pi the target
    falls back to cos(theta) - m sin(m) so it stays monotonic (insightface's rule)."""

    def __init__(self, dim: int, num_classes: int, scale: float = 64.0, m: float = 0.5) -> None:
        super().__init__(dim, num_classes, scale)
        self.m = m

    def margin(self, cos_b: torch.Tensor) -> torch.Tensor:
        # sqrt'(0) is infinite: at exact alignment (cos = +-1) the gradient would be NaN. Clamp away from +-1 as
        # insightface does (its logits are clamped to [-1 + 1e-7, 1 - 1e-7] before arccos).
        cos_b = cos_b.clamp(-1 + 1e-7, 1 - 1e-7)
        sin_b = torch.sqrt(1.0 - cos_b * cos_b)
        phi_b = cos_b * math.cos(self.m) - sin_b * math.sin(self.m)
        return torch.where(cos_b > math.cos(math.pi - self.m), phi_b, cos_b - math.sin(math.pi - self.m) * self.m)


@HEADS.register("cosface")
class CosFaceHead(CosineHead):
    """CosFace (Wang et al.): cos(theta) - m on the target, s = 64, m = 0.35."""

    def __init__(self, dim: int, num_classes: int, scale: float = 64.0, m: float = 0.35) -> None:
        super().__init__(dim, num_classes, scale)
        self.m = m

    def margin(self, cos_b: torch.Tensor) -> torch.Tensor:
        return cos_b - self.m




def build_head(name: str, dim: int, num_classes: int, **kwargs) -> nn.Module:
    import inspect

    from facekit.errors import InputError

    head = HEADS.get(name)
    known = [p for p in inspect.signature(head).parameters if p not in ("dim", "num_classes")]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise InputError(f"loss.chief_kwargs: {name} has no setting {unknown[0]!r} (known: {', '.join(known)})")
    return head(dim, num_classes, **kwargs)
