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
    """Skips a step whose gradient is not finite without making the host wait for the device. The verdict stays a
    device tensor (``assess``): the optimisers take it as PyTorch's own skip flag (``found_inf``, the one GradScaler
    hands the fused optimisers: weights, moments and step counts stay as they were) and the centre updates as a gate.
    The counts reach the host at logging steps only (``check``), which stops the run once ``limit`` steps in a row
    were skipped."""

    def __init__(self, limit: int, device: torch.device) -> None:
        self.limit, self.skipped = limit, 0  # skipped: the host's copy, as of the last check
        self._counts = torch.zeros(3, dtype=torch.long, device=device)  # skipped, current run, longest run

    def assess(self, *values: torch.Tensor) -> torch.Tensor:
        """A 0-d bool on the device: every value finite. Under DDP pass values that are the same on every rank
        (the global gradient norm after the all-reduce), so every rank skips alike."""
        return self.record(torch.stack([torch.isfinite(v.detach().float()).all() for v in values]).all())

    def record(self, ok: torch.Tensor) -> torch.Tensor:
        """Counts a step by its verdict ``ok`` (0-d bool on the device); returns it."""
        bad = (~ok).long()
        skipped, run, longest = self._counts.unbind()
        run = (run + 1) * bad
        self._counts = torch.stack([skipped + bad, run, torch.maximum(longest, run)])
        return ok

    @staticmethod
    def step(opt: torch.optim.Optimizer, ok: torch.Tensor) -> None:
        """``opt.step()`` where ``ok``, nothing where not; ``opt`` must be a fused optimiser (``fused=True``)."""
        opt.grad_scale, opt.found_inf = None, (~ok).float()
        opt.step()

    def check(self, step: int) -> None:
        """One host sync: updates ``skipped``; raises after ``limit`` skipped steps in a row."""
        self.skipped, _, longest = self._counts.tolist()
        if longest >= self.limit:
            raise InputError(f"step {step}: {longest} steps in a row had a non-finite loss or gradient "
                             f"({self.skipped} skipped in all); lower optim.lr, set optim.amp: bfloat16 or off, "
                             f"or check the data")


def channels_last_for(setting: str | bool, precision: Precision) -> bool:
    """``optim.channels_last``: ``auto`` is on for CUDA with mixed precision (tensor-core convolutions run NHWC;
    PyTorch's memory-format guidance), off on CPU and in float32."""
    if setting == "auto":
        return precision.device_type == "cuda" and precision.dtype is not None
    if isinstance(setting, bool):
        return setting
    raise InputError(f"optim.channels_last: {setting!r} is not one of auto, true, false")


def speed_up(model: torch.nn.Module, channels_last: bool, compile_model: bool) -> torch.nn.Module:
    """The network as it will run: NHWC weights (``channels_last``) and/or ``torch.compile`` (the first steps
    compile: minutes on a large backbone; give it a run of thousands of steps). Returns the module to call; its
    parameters are ``model``'s own, so checkpoints keep saving ``model``."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compile_model else model
