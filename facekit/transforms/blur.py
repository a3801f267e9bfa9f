"""Motion blur (aggregation paper, section 4.1 training augmentation and Table 4): a line kernel of ``size``
pixels at ``angle`` degrees, normalised to sum 1, applied per channel with reflected borders."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def motion_blur_kernel(size: int, angle_deg: float) -> torch.Tensor:
    """(size, size) float kernel: a centred line segment of length ``size`` at ``angle_deg``, anti-aliased by
    sampling the segment at 4x and splatting bilinearly. size 1 is the identity."""
    if size < 1:
        raise ValueError(f"motion blur kernel size must be >= 1, got {size}")
    k = torch.zeros(size, size, dtype=torch.float64)
    c = (size - 1) / 2
    t = np.linspace(-c, c, 4 * size)
    a = np.deg2rad(angle_deg)
    xs, ys = c + t * np.cos(a), c - t * np.sin(a)
    for x, y in zip(xs, ys):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                k[y0 + dy, x0 + dx] += w
    return (k / k.sum()).float()


def motion_blur(images_bchw: torch.Tensor, size: int, angle_deg: float) -> torch.Tensor:
    """Blur float or uint8 images (B, C, H, W); returns the input's dtype."""
    if size <= 1:
        return images_bchw
    k = motion_blur_kernel(size, angle_deg).to(images_bchw.device)
    c = images_bchw.shape[1]
    x = images_bchw.float()
    pad = size // 2
    x = F.pad(x, (pad, size - 1 - pad, pad, size - 1 - pad), mode="reflect")
    y = F.conv2d(x, k.expand(c, 1, size, size), groups=c)
    if images_bchw.dtype == torch.uint8:
        return y.round().clamp(0, 255).to(torch.uint8)
    return y
