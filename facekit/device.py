"""Device choice: CUDA when available, else CPU; ``--device`` overrides."""

from __future__ import annotations

import torch

from facekit.errors import InputError

_WORKER_INDEX: int | None = None  # set in each worker process of the local engine (0, 1, ...)


def set_worker_index(index: int | None) -> None:
    global _WORKER_INDEX
    _WORKER_INDEX = index


def resolve_device(name: str | None = None) -> torch.device:
    """Return ``torch.device(name)``, or the best available device when ``name`` is None or "auto".

    In a worker process of the local engine, devices are spread round-robin: ``cuda`` (or ``auto``) on a node with
    G GPUs gives worker i ``cuda:(i mod G)``, and a list ``cuda:0,cuda:2`` gives worker i its (i mod 2)-th entry
    (the driver takes the first)."""
    if name is not None and "," in name:  # a list: every entry checked, one per worker in turn
        devices = [_parse(n.strip()) for n in name.split(",") if n.strip()]
        return devices[(_WORKER_INDEX or 0) % len(devices)]
    if name is None or name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = _parse(name)
    if device.type == "cuda" and device.index is None and _WORKER_INDEX is not None:
        device = torch.device("cuda", _WORKER_INDEX % max(1, torch.cuda.device_count()))
    return device


def _parse(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"--device {name!r}: not a device name ({err}); use cpu, cuda, cuda:N or a list such as "
                         f"cuda:0,cuda:1") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
    return device
