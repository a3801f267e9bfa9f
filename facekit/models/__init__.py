"""Backbones by name. ``build_backbone(name, **kwargs)`` is the registry every trainer and loader uses.

| name | paper | input | normalisation |
|---|---|---|---|
| ``sphereface20/64`` | SeqFace ResNet-20/64 (SphereFace layout, no BN) | 128 (crop of 144) | (x - 127.5) / 128 |
| ``resnet27`` | SeqFace ResNet-27 (Figure 5: centre-loss net, max-pooling) | 128 (crop of 144) | (x - 127.5) / 128 |
| ``dlib_resnet`` | dlib's face ResNet (``model.init: dlib-torch:default`` loads it) | 150 | (x - 127.5) / 127.5 |
| ``iresnet18/34/50/100`` | insightface ArcFace IResNet, loads public ``backbone.pth`` | 112 | (x - 127.5) / 127.5 |
"""

from __future__ import annotations

from torch import nn

from facekit.errors import InputError
from facekit.models.iresnet import LAYERS, iresnet
from facekit.models.resnet27 import ResNet27
from facekit.models.sphereface import UNITS, sphereface

SEQFACE_NETS: tuple[str, ...] = (*UNITS, "resnet27")
BACKBONES: tuple[str, ...] = (*SEQFACE_NETS, "dlib_resnet", *LAYERS)


def build_backbone(name: str, **kwargs) -> nn.Module:
    if name in UNITS:
        return sphereface(name, **kwargs)
    if name == "resnet27":
        return ResNet27(**kwargs)
    if name == "dlib_resnet":
        from facekit.models.dlib_resnet import DlibBackbone

        return DlibBackbone(**kwargs)
    if name in LAYERS:
        return iresnet(name, **kwargs)
    hint = " (SeqFace's ResNet-27 is 'resnet27': the max-pooling layout of its Figure 5)" \
        if name == "sphereface27" else ""
    raise InputError(f"unknown backbone {name!r}{hint} (known: {', '.join(BACKBONES)})")


def input_scale(name: str) -> tuple[float, float]:
    """(mean, std) of the pixel normalisation the backbone family was defined with: x' = (x - mean) / std."""
    return (127.5, 128.0) if name in SEQFACE_NETS else (127.5, 127.5)
