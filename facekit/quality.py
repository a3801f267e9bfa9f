"""Per-face quality measures used to filter faces: sharpness, pose proxies, size, near-duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def grey(crops_n3hw: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of uint8/float RGB crops -> float (n, 1, H, W) in 0..255."""
    c = crops_n3hw.float()
    return (0.299 * c[:, 0] + 0.587 * c[:, 1] + 0.114 * c[:, 2]).unsqueeze(1)


def laplacian_variance(crops_n3hw: torch.Tensor) -> np.ndarray:
    """Sharpness: variance of the 4-neighbour Laplacian of the grey crop (valid pixels only). Blurry -> small."""
    if crops_n3hw.shape[0] == 0:
        return np.zeros(0, np.float32)
    g = grey(crops_n3hw)[:, 0]  # (n, H, W); the stencil as slices (a conv2d would cache a oneDNN primitive per n)
    lap = g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:] - 4 * g[:, 1:-1, 1:-1]
    # in numpy float64, row by row: torch splits a one-row reduction over its threads, so the variance of a single
    # crop depended on the thread count (a face at the blur threshold kept with one thread, dropped with two)
    return lap.flatten(1).cpu().numpy().astype(np.float64).var(axis=1).astype(np.float32)


def duplicate_signature(crops_n3hw: torch.Tensor, size: int = 16) -> np.ndarray:
    """A size x size grey thumbnail (0..1) per crop for near-duplicate tests: (n, size*size) float32."""
    if crops_n3hw.shape[0] == 0:
        return np.zeros((0, size * size), np.float32)
    return (F.adaptive_avg_pool2d(grey(crops_n3hw), size).flatten(1) / 255.0).cpu().numpy().astype(np.float32)


@dataclass(frozen=True)
class PoseProxy:
    yaw: np.ndarray  # nose offset from the eye/mouth midline, in eye distances; 0 frontal, about +-0.5 near profile
    roll_deg: np.ndarray  # angle of the eye line


def pose_proxy(landmarks_n5x2: np.ndarray) -> PoseProxy:
    """Head-pose proxies from the 5 landmarks (no 3-D model)."""
    lm = np.asarray(landmarks_n5x2, dtype=np.float64).reshape(-1, 5, 2)
    eye_l, eye_r, nose = lm[:, 0], lm[:, 1], lm[:, 2]
    mid = (eye_l + eye_r + lm[:, 3] + lm[:, 4]) / 4
    eye_vec = eye_r - eye_l
    eye_dist = np.maximum(np.linalg.norm(eye_vec, axis=1), 1e-6)
    # signed projection of (nose - midpoint) on the eye axis
    yaw = ((nose - mid) * eye_vec).sum(1) / eye_dist ** 2
    roll = np.degrees(np.arctan2(eye_vec[:, 1], eye_vec[:, 0]))
    return PoseProxy(yaw.astype(np.float32), roll.astype(np.float32))
