"""SeqFace's ResNet-27 (Figure 5): the centre-loss network of Wen et al. 2016 that the paper's footnote cites
(ydwen/caffe-face, ``face_example/face_deploy.prototxt``).

Layer by layer, as that prototxt has it (3x3 convs, PReLU after every conv, no batch norm):

    conv1a 3->32 (no pad), conv1b 32->64 (no pad), max-pool 2x2/2
    stage 1:  1 residual unit  at  64, then conv2 64->128 (no pad), max-pool 2x2/2
    stage 2:  2 residual units at 128, then conv3 128->256 (no pad), max-pool 2x2/2
    stage 3:  5 residual units at 256, then conv4 256->512 (no pad), max-pool 2x2/2
    stage 4:  3 residual units at 512
    fc5: flatten -> 512

A residual unit is conv (pad 1) + PReLU, conv (pad 1) + PReLU, added to its input (Eltwise SUM). That is
2 + 2 (1 + 2 + 5 + 3) + 3 = 27 convolutions. The unit convs' biases have ``lr_mult: 0`` in the prototxt: they
exist and stay at zero, so they are frozen here. Caffe pools with ceil rounding. The prototxt's input is 112x96;
SeqFace trains on 128x128 crops of 144x144 faces (fc5 then sees 512 x 6 x 6). Input normalisation (x - 127.5) / 128.
"""

from __future__ import annotations

import math

import torch
from torch import nn

UNITS_27 = (1, 2, 5, 3)


def _conv(cin: int, cout: int, pad: int, std: float | None) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, 1, pad)
    if std is None:
        nn.init.xavier_uniform_(conv.weight)  # prototxt: xavier for the widening convs
    else:
        nn.init.normal_(conv.weight, std=std)  # prototxt: gaussian(0.01) inside residual units
    nn.init.zeros_(conv.bias)
    return conv


class CaffeResidualUnit(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1, self.prelu1 = _conv(ch, ch, 1, 0.01), nn.PReLU(ch, init=0.25)
        self.conv2, self.prelu2 = _conv(ch, ch, 1, 0.01), nn.PReLU(ch, init=0.25)
        for conv in (self.conv1, self.conv2):
            conv.bias.requires_grad_(False)  # lr_mult: 0 in the prototxt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.prelu2(self.conv2(self.prelu1(self.conv1(x))))


def _side(n: int, stages: int) -> int:
    """Spatial side after the stem and ``stages`` (unpadded conv: -2; ceil-mode max-pool 2x2/2)."""
    n = math.ceil((n - 4) / 2)  # conv1a, conv1b, pool1b
    for _ in range(stages - 1):
        n = math.ceil((n - 2) / 2)  # conv2/3/4 + pool
    return n


class ResNet27(nn.Module):
    def __init__(self, num_features: int = 512, input_size: int | tuple[int, int] = 128,
                 widths: tuple[int, ...] = (64, 128, 256, 512), stem: int = 32,
                 units: tuple[int, ...] = UNITS_27) -> None:
        super().__init__()
        h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if min(_side(h, len(widths)), _side(w, len(widths))) < 1:
            raise ValueError(f"input_size {input_size} is too small for ResNet-27 (at least 44 px)")
        layers: list[nn.Module] = [_conv(3, stem, 0, None), nn.PReLU(stem, init=0.25),
                                   _conv(stem, widths[0], 0, None), nn.PReLU(widths[0], init=0.25),
                                   nn.MaxPool2d(2, 2, ceil_mode=True)]
        for i, (ch, n) in enumerate(zip(widths, units)):
            layers += [CaffeResidualUnit(ch) for _ in range(n)]
            if i + 1 < len(widths):
                layers += [_conv(ch, widths[i + 1], 0, None), nn.PReLU(widths[i + 1], init=0.25),
                           nn.MaxPool2d(2, 2, ceil_mode=True)]
        self.features = nn.Sequential(*layers)
        self.fc5 = nn.Linear(widths[-1] * _side(h, len(widths)) * _side(w, len(widths)), num_features)
        nn.init.xavier_uniform_(self.fc5.weight)
        nn.init.zeros_(self.fc5.bias)

    def forward(self, x_b3hw: torch.Tensor) -> torch.Tensor:
        return self.fc5(torch.flatten(self.features(x_b3hw), 1))
