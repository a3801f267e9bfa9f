"""facekit backbone files (``facekit:/path/model.pt``): the weights plus everything needed to use them.

``{"format": "facekit-backbone-v1", "arch", "kwargs", "state_dict", "template", "input_size", "mean", "std",
"flip"}``: the backbone is ``build_backbone(arch, **kwargs)``; faces are aligned to ``template`` at
``input_size`` (``name@A``: aligned at A x A, then the centre ``input_size`` crop, as in training), normalised
(x - mean) / std; ``flip`` says whether the evaluation adds the mirrored image's
feature. Plain data only, so ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from facekit.fsutil import atomic_path

FACEKIT_FORMAT = "facekit-backbone-v1"


def save_backbone(path: Path, arch: str, kwargs: dict, net: nn.Module, template: str, input_size: int,
                  mean: float, std: float, flip: bool) -> Path:
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    blob = {"format": FACEKIT_FORMAT, "arch": arch, "kwargs": dict(kwargs), "state_dict": state,
            "template": template, "input_size": int(input_size), "mean": float(mean), "std": float(std),
            "flip": bool(flip)}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def export_onnx(net: nn.Module, path: Path, input_size: int, opset: int = 17) -> Path:
    """ONNX with a dynamic batch axis; input ``images`` (B, 3, S, S) normalised as the checkpoint says."""
    net = net.eval().cpu()
    dummy = torch.zeros(2, 3, input_size, input_size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # shape tests in the graph depend on the fixed input size only; the batch axis stays dynamic (tested)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(net, (dummy,), str(tmp), input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
    return path
