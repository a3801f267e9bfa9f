"""Re-aligning faces from one template to another, differentiably (the aggregator's frozen F sees its own template).

A face aligned to template ``src`` has its 5 landmarks at ``src``'s points; re-aligning it to ``dst`` is the
similarity that maps ``dst``'s points onto ``src``'s (output pixel -> input pixel), sampled with ``grid_sample``.
Pixel centres are at integer coordinates, as in ``facekit.align.similarity``. Parts of ``dst`` that ``src``'s crop
does not cover repeat its border pixels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from facekit.align.similarity import umeyama_similarity
from facekit.align.templates import Template


def template_map(src: Template, dst: Template) -> np.ndarray:
    """(2, 3) similarity A with ``src_pixel = A @ [dst_x, dst_y, 1]``."""
    return umeyama_similarity(dst.as_array(), src.as_array())


def is_rescale(src: Template, dst: Template, tol: float = 1e-3) -> bool:
    """True when ``dst`` is ``src`` resized (same geometry, other size): a plain resize re-aligns."""
    return bool(np.abs(src.resized(dst.size).as_array() - dst.as_array()).max() < tol)


def template_warp(images_b3hw: torch.Tensor, src: Template, dst: Template) -> torch.Tensor:
    """(B, 3, src.size, src.size) faces aligned to ``src`` -> (B, 3, dst.size, dst.size) aligned to ``dst``.

    Differentiable in the images. A pure change of size is an antialiased bilinear resize; otherwise the image is
    first shrunk (antialiased) when the map shrinks it by more than 1.25x, then warped bilinearly."""
    if images_b3hw.shape[-1] != src.size or images_b3hw.shape[-2] != src.size:
        raise ValueError(f"images of {tuple(images_b3hw.shape[-2:])} px, template {src.name!r} is {src.size} px")
    if is_rescale(src, dst):
        if src.size == dst.size:
            return images_b3hw
        return F.interpolate(images_b3hw, size=(dst.size, dst.size), mode="bilinear", antialias=True,
                             align_corners=False)
    a = template_map(src, dst)
    shrink = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
    size_in = src.size
    if shrink > 1.25:  # pre-shrink so bilinear sampling does not skip pixels
        size_in = max(1, int(round(src.size / shrink)))
        images_b3hw = F.interpolate(images_b3hw, size=(size_in, size_in), mode="bilinear", antialias=True,
                                    align_corners=False)
        s = size_in / src.size  # pixel centre x' = s * (x + 0.5) - 0.5
        a = a * s
        a[:, 2] += 0.5 * s - 0.5
    # output pixel (x, y) reads input pixel a @ [x, y, 1]; grid_sample wants [-1, 1] coordinates (align_corners=False)
    n = dst.size
    ys, xs = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    at = torch.as_tensor(a, dtype=torch.float64)
    src_x = at[0, 0] * xs + at[0, 1] * ys + at[0, 2]
    src_y = at[1, 0] * xs + at[1, 1] * ys + at[1, 2]
    grid = torch.stack([(2 * src_x + 1) / size_in - 1, (2 * src_y + 1) / size_in - 1], dim=-1)
    grid = grid.to(images_b3hw.device, images_b3hw.dtype).expand(images_b3hw.shape[0], n, n, 2)
    return F.grid_sample(images_b3hw, grid, mode="bilinear", padding_mode="border", align_corners=False)


def warp_crops(crops_bhwc: np.ndarray, src: Template, dst: Template) -> np.ndarray:
    """uint8 (B, S, S, 3) crops aligned to ``src`` -> uint8 (B, D, D, 3) aligned to ``dst``."""
    if len(crops_bhwc) == 0 or (is_rescale(src, dst) and src.size == dst.size):
        return np.asarray(crops_bhwc)
    x = torch.from_numpy(np.ascontiguousarray(crops_bhwc)).permute(0, 3, 1, 2).float()
    y = template_warp(x, src, dst)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
