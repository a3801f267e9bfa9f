"""Face Aggregation Network (Face Aggregation Network paper, section 3.1): a permutation-invariant U-Net that fuses a
set of N aligned faces into one face image, and its discriminator (section 3.1.2).

Sets are folded into the batch axis, (B*N, C, H, W), so every face goes through the same weights. A *global
concatenation* (Eq. 4) views the tensor as (B, N, C, H, W), takes the max over the set and concatenates it to
every member: C -> 2C. A ``mask`` (B, N) marks the real members of padded sets, so a batch may mix set sizes
(masked max: padding never wins). Order never matters: every set operation is a max.

Layout (the paper; widths are settings):
    stem 3x3 -> [global concat, 1x1, 3x3 stride 2] x 4 (112 -> 7)
    -> [4x4 deconv stride 2, global concat (+ encoder skip of that resolution), 1x1, 3x3] x 4 (7 -> 112)
    -> max over the set -> two 3x3 convs -> image. ELU after every conv / deconv except the output.
Input and output: (x - 127.5) / 127.5 RGB, 112x112 (ArcFace-aligned, as the frozen feature extractor expects).
"""

from __future__ import annotations

import torch
from torch import nn


def set_max(x_bnchw: torch.Tensor, mask_bn: torch.Tensor | None) -> torch.Tensor:
    """Max over the set axis; padded members (mask False) are ignored. (B, N, C, H, W) -> (B, C, H, W)."""
    if mask_bn is not None:
        x_bnchw = x_bnchw.masked_fill(~mask_bn[:, :, None, None, None], float("-inf"))
    return x_bnchw.amax(dim=1)


def global_concat(x_mchw: torch.Tensor, n: int, mask_bn: torch.Tensor | None) -> torch.Tensor:
    """Eq. 4: Y_n = X_n (+) max_j X_j on channels. ``x_mchw`` is (B*N, C, H, W) with the set folded in."""
    m, c, h, w = x_mchw.shape
    pooled_bchw = set_max(x_mchw.view(m // n, n, c, h, w), mask_bn)
    pooled_mchw = pooled_bchw[:, None].expand(m // n, n, c, h, w).reshape(m, c, h, w)
    return torch.cat([x_mchw, pooled_mchw], dim=1)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.ELU())


class FaceAggregator(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), stem: int = 32) -> None:
        super().__init__()
        self.stem = _conv(3, stem, 3)
        self.enc_merge, self.enc_down = nn.ModuleList(), nn.ModuleList()
        cin, skips = stem, []
        for w in widths:  # encoder: global concat, 1x1 (merge local + global), 3x3 stride 2
            skips.append(cin)
            self.enc_merge.append(_conv(2 * cin, w, 1))
            self.enc_down.append(_conv(w, w, 3, stride=2))
            cin = w
        self.dec_up, self.dec_merge, self.dec_conv = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for skip_ch in reversed(skips):  # decoder: 4x4 deconv, global concat + encoder skip, 1x1, 3x3
            up = max(skip_ch, stem)
            self.dec_up.append(nn.Sequential(nn.ConvTranspose2d(cin, up, 4, 2, 1), nn.ELU()))
            self.dec_merge.append(_conv(2 * up + skip_ch, up, 1))
            self.dec_conv.append(_conv(up, up, 3))
            cin = up
        self.head = nn.Sequential(_conv(cin, cin, 3), nn.Conv2d(cin, 3, 3, 1, 1))

    def forward(self, faces_bn3hw: torch.Tensor, mask_bn: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, 3, H, W) faces (and optional (B, N) bool mask of real members) -> (B, 3, H, W) one face per set."""
        b, n = faces_bn3hw.shape[:2]
        x = self.stem(faces_bn3hw.flatten(0, 1))
        skips = []
        for merge, down in zip(self.enc_merge, self.enc_down):
            skips.append(x)
            x = down(merge(global_concat(x, n, mask_bn)))
        for up, merge, conv, skip in zip(self.dec_up, self.dec_merge, self.dec_conv, reversed(skips)):
            x = up(x)
            x = conv(merge(torch.cat([global_concat(x, n, mask_bn), skip], dim=1)))
        fused_bchw = set_max(x.view(b, n, *x.shape[1:]), mask_bn)
        return self.head(fused_bchw)


class Discriminator(nn.Module):
    """Section 3.1.2: four convs with leaky ReLU, the first two stride 2 (112 -> 28), then one neuron connected to
    every pixel of the last map. Returns logits (B,); D(.) = sigmoid(logit)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 64, 32), input_size: int = 112) -> None:
        super().__init__()
        layers, cin = [], 3
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, 2 if i < 2 else 1, 1), nn.LeakyReLU(0.2)]
            cin = w
        self.convs = nn.Sequential(*layers)
        side = input_size // 4
        self.fc = nn.Linear(cin * side * side, 1)

    def forward(self, image_b3hw: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.convs(image_b3hw), 1)).squeeze(1)
