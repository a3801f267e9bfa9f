"""MobileFaceNet as insightface's arcface_torch ships it (``mbf``: blocks (1, 4, 6, 2), width x2; ``mbf_large``:
blocks (2, 8, 12, 4), width x4), laid out so that the public ``backbone.pth`` files load strictly: the module
names below are the checkpoints' parameter names (``layers.<i>.layers...``, ``conv_sep``, ``features``).

Chen et al., MobileFaceNets (2018): depthwise-separable bottlenecks with residuals, a global depthwise
convolution (GDC, a 7x7 depthwise layer) instead of pooling, a linear 512 -> d embedding with batch norm.
Input 112 x 112 on the ArcFace template, (x - 127.5) / 127.5."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(in_c: int, out_c: int, kernel: int, stride: int, padding: int, groups: int, act: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(out_c)]
    return nn.Sequential(*layers, *([nn.PReLU(out_c)] if act else []))


class ConvUnit(nn.Module):
    """conv -> BN (-> PReLU when ``act``); its parameters sit under ``layers`` as the checkpoints name them."""

    def __init__(self, in_c: int, out_c: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.layers = _conv_bn(in_c, out_c, kernel, stride, padding, groups, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Bottleneck(nn.Module):
    """1x1 expand to ``mid`` -> 3x3 depthwise (``stride``) -> 1x1 linear projection; + input when ``residual``."""

    def __init__(self, in_c: int, out_c: int, mid: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(ConvUnit(in_c, mid), ConvUnit(mid, mid, 3, stride, 1, groups=mid),
                                    ConvUnit(mid, out_c, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x) if self.residual else self.layers(x)


class Stage(nn.Module):
    """``n`` residual bottlenecks at width ``c``."""

    def __init__(self, c: int, n: int, mid: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(Bottleneck(c, c, mid, 1, True) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GlobalDepthwise(nn.Module):
    """GDC: a 7x7 depthwise linear conv over the 7x7 map, flatten, linear 512 -> d, batch norm."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(ConvUnit(512, 512, 7, 1, 0, groups=512, act=False), nn.Flatten(),
                                    nn.Linear(512, num_features, bias=False), nn.BatchNorm1d(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MobileFaceNet(nn.Module):
    def __init__(self, num_features: int = 512, blocks: tuple[int, int, int, int] = (1, 4, 6, 2), scale: int = 2,
                 input_size: int = 112) -> None:
        super().__init__()
        if input_size != 112:
            raise ValueError("MobileFaceNet's GDC expects 112 x 112 inputs (a 7 x 7 map)")
        w1, w2 = 64 * scale, 128 * scale
        first = ConvUnit(w1, w1, 3, 1, 1, groups=64) if blocks[0] == 1 else Stage(w1, blocks[0], 128)
        self.layers = nn.ModuleList([
            ConvUnit(3, w1, 3, 2, 1), first,                                      # 112 -> 56
            Bottleneck(w1, w1, 128, 2, False), Stage(w1, blocks[1], 128),         # -> 28
            Bottleneck(w1, w2, 256, 2, False), Stage(w2, blocks[2], 256),         # -> 14
            Bottleneck(w2, w2, 512, 2, False), Stage(w2, blocks[3], 256),         # -> 7
        ])
        self.conv_sep = ConvUnit(w2, 512)
        self.features = GlobalDepthwise(num_features)

    def forward(self, x_b3hw: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x_b3hw = layer(x_b3hw)
        return self.features(self.conv_sep(x_b3hw))


VARIANTS = {"mbf": ((1, 4, 6, 2), 2), "mbf_large": ((2, 8, 12, 4), 4)}


def mobilefacenet(name: str, **kwargs) -> MobileFaceNet:
    blocks, scale = VARIANTS[name]
    return MobileFaceNet(blocks=blocks, scale=scale, **kwargs)
