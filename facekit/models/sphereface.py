"""SphereFace-style residual networks (Liu et al. 2017), the backbones of the SeqFace paper (ResNet-20/27/64).

Layout (from the released SphereFace/SeqFace Caffe nets): four stages at 64/128/256/512 channels, each opened by a
stride-2 3x3 conv + PReLU and followed by ``units`` residual units (3x3 conv + PReLU, 3x3 conv + PReLU, + input).
No batch norm. ``fc5``: flatten (512 x S/16 x S/16) -> 512. Depth = 4 stride convs + 2 x sum(units) + fc5 - 1:
ResNet-20 [1,2,4,1], ResNet-64 [3,8,16,3]. SeqFace's ResNet-27 is another layout (max-pooling, the centre-loss
network of its footnote): ``facekit.models.resnet27``.

Input: (B, 3, S, S) RGB with (x - 127.5) / 128 (SeqFace section 4.1); S = 128 by default (random 128 crop of the
144 aligned face). Output: (B, 512) fc5 feature, not normalised.
"""

from __future__ import annotations

import torch
from torch import nn

UNITS = {"sphereface20": (1, 2, 4, 1), "sphereface64": (3, 8, 16, 3)}


class ResidualUnit(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(ch, ch, 3, 1, 1), nn.PReLU(ch, init=0.25)
        self.conv2, self.prelu2 = nn.Conv2d(ch, ch, 3, 1, 1), nn.PReLU(ch, init=0.25)
        for conv in (self.conv1, self.conv2):  # SphereFace: gaussian(0.01) so each unit starts near identity
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.prelu2(self.conv2(self.prelu1(self.conv1(x))))


class SphereFaceResNet(nn.Module):
    def __init__(self, units: tuple[int, ...], num_features: int = 512, input_size: int = 128,
                 widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        stages, in_ch = [], 3
        for w, n in zip(widths, units):
            down = nn.Conv2d(in_ch, w, 3, 2, 1)
            nn.init.xavier_uniform_(down.weight)
            nn.init.zeros_(down.bias)
            stages.append(nn.Sequential(down, nn.PReLU(w, init=0.25), *(ResidualUnit(w) for _ in range(n))))
            in_ch = w
        self.stages = nn.Sequential(*stages)
        side = input_size // 16
        self.fc5 = nn.Linear(widths[-1] * side * side, num_features)
        nn.init.xavier_uniform_(self.fc5.weight)
        nn.init.zeros_(self.fc5.bias)

    def forward(self, x_b3ss: torch.Tensor) -> torch.Tensor:
        return self.fc5(torch.flatten(self.stages(x_b3ss), 1))


def sphereface(name: str, **kwargs) -> SphereFaceResNet:
    return SphereFaceResNet(UNITS[name], **kwargs)
