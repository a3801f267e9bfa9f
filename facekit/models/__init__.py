"""Backbones by name. ``build_backbone(name, **kwargs)`` is the registry every trainer and loader uses."""

from __future__ import annotations

from torch import nn

from facekit.embed.iresnet import LAYERS, iresnet
from facekit.errors import InputError


def build_backbone(name: str, **kwargs) -> nn.Module:
    if name in LAYERS:
        return iresnet(name, **kwargs)
    raise InputError(f"unknown backbone {name!r} (known: {', '.join(LAYERS)})")
