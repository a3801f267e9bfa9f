"""Backbones by name. ``build_backbone(name, **kwargs)`` is the registry every trainer and loader uses.

| name | paper | input | normalisation |
|---|---|---|---|
| ``sphereface20/64`` | SeqFace ResNet-20/64 (SphereFace layout, no BN) | 128 (crop of 144) | (x - 127.5) / 128 |
| ``resnet27`` | SeqFace ResNet-27 (Figure 5: centre-loss net, max-pooling) | 128 (crop of 144) | (x - 127.5) / 128 |
| ``dlib_resnet`` | dlib's face ResNet (``model.init: dlib-torch:default`` loads it) | 150 | (x - 127.5) / 127.5 |
| ``iresnet18/34/50/100/200`` | insightface ArcFace IResNet, loads public ``backbone.pth`` | 112 | (x - 127.5) / 127.5 |
| ``mbf``, ``mbf_large`` | insightface's MobileFaceNets, load public ``backbone.pth`` | 112 | (x - 127.5) / 127.5 |
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from facekit.models.iresnet import LAYERS, iresnet
from facekit.models.mobilefacenet import VARIANTS, mobilefacenet
from facekit.models.resnet27 import ResNet27
from facekit.models.sphereface import UNITS, sphereface
from facekit.registry import Registry

SEQFACE_NETS: tuple[str, ...] = (*UNITS, "resnet27")  # normalised (x - 127.5) / 128, as SeqFace's Caffe nets

BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone", hints={
    "sphereface27": "SeqFace's ResNet-27 is 'resnet27': the max-pooling layout of its Figure 5"})
for _unit in UNITS:
    BACKBONES.register(_unit)(partial(sphereface, _unit))
BACKBONES.register("resnet27")(ResNet27)
for _depth in LAYERS:
    BACKBONES.register(_depth)(partial(iresnet, _depth))
for _variant in VARIANTS:  # insightface's MobileFaceNets
    BACKBONES.register(_variant)(partial(mobilefacenet, _variant))


@BACKBONES.register("dlib_resnet")
def _dlib_resnet(**kwargs) -> nn.Module:
    from facekit.models.dlib_resnet import DlibBackbone

    return DlibBackbone(**kwargs)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """``BACKBONES.build``: the network ``name`` with its settings (``num_features``, ``input_size`` ...)."""
    return BACKBONES.build(name, **kwargs)


def input_scale(name: str) -> tuple[float, float]:
    """(mean, std) of the pixel normalisation the backbone family was defined with: x' = (x - mean) / std."""
    return (127.5, 128.0) if name in SEQFACE_NETS else (127.5, 127.5)
