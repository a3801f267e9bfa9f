"""Backbones by name. ``build_backbone(name, **kwargs)`` is the registry every trainer and loader uses.

| name | paper | input | normalisation |
|---|---|---|---|
| ``sphereface20/27/64`` | SeqFace ResNet-20/27/64 (SphereFace layout, no BN) | 128 (crop of 144) | (x - 127.5) / 128 |
| ``iresnet18/34/50/100`` | insightface ArcFace IResNet, loads public ``backbone.pth`` | 112 | (x - 127.5) / 127.5 |
"""

from __future__ import annotations

from torch import nn

from facekit.embed.iresnet import LAYERS, iresnet
from facekit.errors import InputError
from facekit.models.sphereface import UNITS, sphereface

BACKBONES: tuple[str, ...] = (*UNITS, *LAYERS)


def build_backbone(name: str, **kwargs) -> nn.Module:
    if name in UNITS:
        return sphereface(name, **kwargs)
    if name in LAYERS:
        return iresnet(name, **kwargs)
    raise InputError(f"unknown backbone {name!r} (known: {', '.join(BACKBONES)})")


def input_scale(name: str) -> tuple[float, float]:
    """(mean, std) of the pixel normalisation the backbone family was defined with: x' = (x - mean) / std."""
    return (127.5, 128.0) if name in UNITS else (127.5, 127.5)
