"""Device choice: CUDA when available, else CPU; ``--device`` overrides."""

from __future__ import annotations

import torch

from facekit.errors import InputError


def resolve_device(name: str | None = None) -> torch.device:
    """Return ``torch.device(name)``, or the best available device when ``name`` is None or "auto"."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"--device {name!r}: not a device name ({err}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
    return device
