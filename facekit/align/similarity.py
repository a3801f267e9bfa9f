"""Closed-form 4-DOF similarity (Umeyama 1991) and batched warping of faces onto a template."""

from __future__ import annotations

import numpy as np
import torch

from facekit.align.templates import Template
from facekit.detect.boxes import warp_patches


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


def align_faces(images_bchw: torch.Tensor, image_index: np.ndarray, landmarks_n5x2: np.ndarray,
                template: Template) -> torch.Tensor:
    """Warp each face (landmarks in image ``image_index``) onto ``template``; returns uint8 (n, 3, S, S).

    The map estimated is template -> image (output pixel to input pixel), what the sampler needs.
    """
    n = len(image_index)
    if n == 0:
        return torch.zeros((0, images_bchw.shape[1], template.size, template.size), dtype=torch.uint8)
    dst = np.broadcast_to(template.as_array(), (n, 5, 2))
    out_to_in = umeyama_similarity(dst, np.asarray(landmarks_n5x2, dtype=np.float64))
    crops = warp_patches(images_bchw.float(), torch.as_tensor(np.asarray(image_index)),
                         torch.as_tensor(out_to_in, dtype=torch.float32), (template.size, template.size))
    return crops.round().clamp(0, 255).to(torch.uint8).cpu()
