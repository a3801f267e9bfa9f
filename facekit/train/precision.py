"""Mixed precision as a recipe chooses it (``optim.amp``), and the step guard that keeps a non-finite step out of
the weights and the centres.

``auto``: bfloat16 where the GPU computes it (Ampere and later: no loss scaling needed), else float16 with the
gradient scaler; ``off``, ``float16``, ``bfloat16`` as named. Mixed precision is for CUDA only: on CPU every
setting trains in float32. The margin heads and the aggregator's losses compute in float32 inside either way."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facekit.errors import InputError

AMP_MODES = ("auto", "off", "float16", "bfloat16")


@dataclass(frozen=True)
class Precision:
    device_type: str  # "cuda", "cpu"
    dtype: torch.dtype | None  # autocast dtype, None: float32 throughout
    scaler: bool  # float16 needs the gradient scaler

    @property
    def name(self) -> str:
        return "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")

    def autocast(self) -> torch.autocast:
        """The forward passes' context: autocast to ``dtype``, or a disabled one for float32."""
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)


def resolve_amp(setting: str | bool, device: torch.device) -> Precision:
    """``optim.amp`` (``true``/``false`` from older recipes read as auto/off) -> the precision this device runs."""
    mode = {True: "auto", False: "off"}.get(setting, setting) if isinstance(setting, bool) else setting
    if mode not in AMP_MODES:
        raise InputError(f"optim.amp: {setting!r} is not one of {', '.join(AMP_MODES)}")
    if device.type != "cuda" or mode == "off":
        return Precision(device.type, None, False)
    if mode == "auto":
        mode = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if mode == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise InputError(f"optim.amp: bfloat16 is not supported on {torch.cuda.get_device_name(device)}; use "
                         f"float16 or auto")
    return Precision(device.type, torch.bfloat16 if mode == "bfloat16" else torch.float16, mode == "float16")


def autotune_convolutions(device: torch.device) -> None:
    """``cudnn.benchmark`` on CUDA (fixed input sizes: cuDNN picks its fastest kernels) unless ``--deterministic``
    asked for repeatable runs."""
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        torch.backends.cudnn.benchmark = True


class StepGuard:
    """Counts steps skipped for a non-finite loss or gradient; stops the run after ``limit`` in a row."""

    def __init__(self, limit: int) -> None:
        self.limit, self.skipped, self.in_a_row = limit, 0, 0

    def check(self, finite: bool, step: int) -> bool:
        """True when the step may be applied; a skipped step is counted, ``limit`` in a row raise."""
        if finite:
            self.in_a_row = 0
            return True
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.limit:
            raise InputError(f"step {step}: {self.in_a_row} steps in a row had a non-finite loss or gradient "
                             f"({self.skipped} skipped in all); lower optim.lr, set optim.amp: bfloat16 or off, "
                             f"or check the data")
        return False
