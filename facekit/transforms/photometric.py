"""Photometric augmentation of the aggregation paper (section 4.1): flip, brightness, contrast, saturation, and
motion blur (kernels up to 9 px, p = 0.5). One function of a seeded numpy Generator, on uint8 (H, W, 3)."""

from __future__ import annotations

import numpy as np
import torch

from facekit.transforms.blur import motion_blur


def augment_face(crop_hwc: np.ndarray, rng: np.random.Generator, flip: bool = True, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2, blur_p: float = 0.5, blur_max: int = 9) -> np.ndarray:
    x = crop_hwc.astype(np.float32)
    if flip and rng.random() < 0.5:
        x = x[:, ::-1]
    if brightness:
        x = x * rng.uniform(1 - brightness, 1 + brightness)
    if contrast:
        mean = x.mean()
        x = mean + (x - mean) * rng.uniform(1 - contrast, 1 + contrast)
    if saturation:
        grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = grey[..., None] + (x - grey[..., None]) * rng.uniform(1 - saturation, 1 + saturation)
    x = np.clip(x, 0, 255)
    if blur_max > 1 and rng.random() < blur_p:
        size = int(rng.integers(3, blur_max + 1))
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
        x = motion_blur(t, size, float(rng.uniform(0, 180)))[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(x.round().astype(np.uint8))
