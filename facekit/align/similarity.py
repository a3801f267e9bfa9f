"""Closed-form 4-DOF similarity (Umeyama 1991) and batched warping of faces onto a template."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from facekit.align.templates import Template
from facekit.detect.boxes import region_block, warp_patches


def umeyama_similarity(src_nx2: np.ndarray, dst_nx2: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) with ``dst ~ A @ [src, 1]``; returns A (2,3).

    Works on a batch too: src, dst of shape (b, n, 2) -> (b, 2, 3).
    """
    src = np.asarray(src_nx2, dtype=np.float64)
    dst = np.asarray(dst_nx2, dtype=np.float64)
    single = src.ndim == 2
    if single:
        src, dst = src[None], dst[None]
    mu_s, mu_d = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0 ** 2).sum(axis=(1, 2)) / src.shape[1]
    cov = np.einsum("bni,bnj->bij", d0, s0) / src.shape[1]  # (b, 2, 2)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones((src.shape[0], 2))
    d[np.linalg.det(u) * np.linalg.det(vt) < 0, 1] = -1  # no reflection
    rot = u @ (d[:, :, None] * vt)
    scale = (sig * d).sum(1) / np.maximum(var_s, 1e-12)
    lin = scale[:, None, None] * rot
    trans = mu_d[:, 0, :] - np.einsum("bij,bj->bi", lin, mu_s[:, 0, :])
    a = np.concatenate([lin, trans[:, :, None]], axis=2)
    return a[0] if single else a


def align_faces(frames_bhwc: np.ndarray | Sequence[np.ndarray], image_index: np.ndarray, landmarks_n5x2: np.ndarray,
                template: Template, device: torch.device | str = "cpu", pixel_budget: int = 1_500_000) -> torch.Tensor:
    """Warp each face (landmarks in frame ``image_index``) onto ``template``; returns uint8 (n, 3, S, S) on the CPU.

    ``frames_bhwc``: uint8 RGB frames of one size (an array or a list of (H, W, 3) arrays). Only the region each
    warp reads is converted to float (a frame-aligned block, so the anti-aliasing pyramid equals the whole
    frame's): a face costs its crop, not its frame. Faces are warped in chunks of at most ``pixel_budget`` block
    pixels (about 18 bytes each with the pyramid), so memory does not depend on how many faces a batch has or
    how large they are. The map estimated is template -> image (output pixel to input pixel), what the sampler
    needs.
    """
    n, size = len(image_index), template.size
    out = torch.zeros((n, 3, size, size), dtype=torch.uint8)
    if n == 0:
        return out
    dst = np.broadcast_to(template.as_array(), (n, 5, 2))
    out_to_in = umeyama_similarity(dst, np.asarray(landmarks_n5x2, dtype=np.float64))  # (n, 2, 3)
    regions = _read_regions(out_to_in, size, frames_bhwc[0].shape[:2])
    for sel in _chunks(regions, pixel_budget):
        reg = regions[sel]
        block = region_block(frames_bhwc, image_index[sel], reg)
        a = out_to_in[sel].copy()
        a[:, :, 2] -= reg[:, :2]  # the block's origin
        images = torch.from_numpy(block).to(device).permute(0, 3, 1, 2)
        crops = warp_patches(images, torch.arange(len(reg)), torch.as_tensor(a, dtype=torch.float32), (size, size))
        out[sel] = crops.round().clamp(0, 255).to(torch.uint8).cpu()
    return out


def _chunks(regions: np.ndarray, pixel_budget: int) -> list[slice]:
    """Consecutive runs of faces whose padded block (run length x largest height x largest width) stays within
    ``pixel_budget``; a face larger than the budget on its own gets a run of one."""
    out, start, hh, ww = [], 0, 0, 0
    for i, (x0, y0, x1, y1) in enumerate(regions):
        h2, w2 = max(hh, int(y1 - y0)), max(ww, int(x1 - x0))
        if i > start and (i - start + 1) * h2 * w2 > pixel_budget:
            out.append(slice(start, i))
            start, h2, w2 = i, int(y1 - y0), int(x1 - x0)
        hh, ww = h2, w2
    out.append(slice(start, len(regions)))
    return out


def _read_regions(out_to_in_n23: np.ndarray, size: int, frame_hw: tuple[int, int], grain: int = 32) -> np.ndarray:
    """Per face, the frame block (x0, y0, x1, y1) its warp reads: the template square's image, plus a pixel,
    snapped outwards to multiples of ``grain`` (2^pyramid levels) and clipped to the frame. An empty block
    (a face entirely off the frame) becomes one pixel, which reads as zeros like the rest of the outside."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    pts = np.einsum("nij,kj->nki", out_to_in_n23, corners)  # (n, 4, 2)
    lo = np.floor((pts.min(1) - 2) / grain) * grain
    hi = np.ceil((pts.max(1) + 2) / grain) * grain
    h, w = frame_hw
    lo = np.clip(lo, 0, [w - 1, h - 1])
    hi = np.maximum(np.clip(hi, 0, [w, h]), lo + 1)
    return np.concatenate([lo, hi], axis=1).astype(np.int64)
