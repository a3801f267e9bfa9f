"""Image loading and normalisation shared by the trainers and their verification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facekit.errors import InputError


def load_crop(path: Path, load_size: int) -> np.ndarray:
    """uint8 (S, S, 3) RGB, resized to ``load_size`` if needed. Raises InputError naming the file."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (load_size, load_size):
                im = im.resize((load_size, load_size), Image.BILINEAR)
            return np.array(im)  # writable: torch.from_numpy needs it
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read crop ({type(err).__name__}: {str(err)[:100]})") from None


def to_chw(crop_hwc: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> uint8 (3, H, W): what the training loaders batch (a quarter of float32's bytes through
    the workers' shared memory and to the GPU), normalised on the device by ``normalise``."""
    return torch.from_numpy(np.ascontiguousarray(crop_hwc)).permute(2, 0, 1)


def normalise(x_uint8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 images of any shape -> float, (x - mean) / std, on their own device."""
    return x_uint8.float().sub_(mean).div_(std)


def to_tensor(crop_hwc: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W), (x - mean) / std."""
    return normalise(to_chw(crop_hwc), mean, std)


def centre_crop(crop_hwc: np.ndarray, size: int) -> np.ndarray:
    o = (crop_hwc.shape[0] - size) // 2
    return crop_hwc[o:o + size, o:o + size]
