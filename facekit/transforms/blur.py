"""Motion blur (aggregation paper, section 4.1 training augmentation and Table 4): a line kernel of ``size``
pixels at ``angle`` degrees, normalised to sum 1, applied per channel with reflected borders."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def motion_blur_kernel(size: int, angle_deg: float) -> torch.Tensor:
    """(n, n) float kernel, n = ``size`` rounded up to odd: ``size`` samples one pixel apart on a line through
    the centre pixel at ``angle_deg`` (0 = horizontal, 90 = vertical, counter-clockwise as seen), weight 1/size
    each, splatted bilinearly. So the blur is ``size`` pixels long, sums to 1 (energy preserved) and its centroid
    is the centre pixel for every size and angle: an even size does not shift the image by half a pixel (an even
    kernel under a convolution would). size 1 is the identity."""
    if size < 1:
        raise ValueError(f"motion blur kernel size must be >= 1, got {size}")
    n = size | 1
    k = torch.zeros(n, n, dtype=torch.float64)
    c = (n - 1) / 2
    t = np.arange(size) - (size - 1) / 2
    a = np.deg2rad(angle_deg)
    xs, ys = c + t * np.cos(a), c - t * np.sin(a)
    for x, y in zip(xs, ys):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < n and 0 <= y0 + dy < n:
                k[y0 + dy, x0 + dx] += w
    return (k / k.sum()).float()


def motion_blur(images_bchw: torch.Tensor, size: int, angle_deg: float) -> torch.Tensor:
    """Blur float or uint8 images (B, C, H, W); returns the input's dtype."""
    if size <= 1:
        return images_bchw
    k = motion_blur_kernel(size, angle_deg).to(images_bchw.device)
    c, n = images_bchw.shape[1], k.shape[0]
    x = F.pad(images_bchw.float(), (n // 2,) * 4, mode="reflect")  # odd kernel, centred: no shift
    y = F.conv2d(x, k.expand(c, 1, n, n), groups=c)
    if images_bchw.dtype == torch.uint8:
        return y.round().clamp(0, 255).to(torch.uint8)
    return y


def blurred_positions(num: int, every: int = 10) -> np.ndarray:
    """Paper Table 4: motion blur on 9 of every 10 frames (all but positions 0, 10, 20, ...)."""
    return np.arange(num) % every != 0
