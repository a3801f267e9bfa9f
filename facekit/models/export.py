"""``facekit export``: a facekit backbone file -> a plain state_dict or ONNX, verified against the original."""

from __future__ import annotations

from pathlib import Path

import torch

from facekit.embed.extractors import _strict, _torch_load
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.models import build_backbone
from facekit.models.checkpoint import FACEKIT_FORMAT, export_onnx


def load_backbone(path: Path) -> tuple[torch.nn.Module, dict]:
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FACEKIT_FORMAT:
        raise InputError(f"{path}: not a facekit backbone file (format {FACEKIT_FORMAT}); "
                         f"a training run's model.pt is one")
    net = build_backbone(ckpt["arch"], **ckpt.get("kwargs", {}))
    _strict(net, ckpt["state_dict"], path)
    return net.eval(), ckpt


def export_model(src: Path, out: Path, fmt: str, seed: int = 0) -> float:
    """Write ``out``; return the max abs difference between the export and the original on random inputs."""
    net, ckpt = load_backbone(src)
    size = int(ckpt["input_size"])
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = net(x)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "state_dict":
        with atomic_path(out) as tmp:
            torch.save(net.state_dict(), tmp)
        again = build_backbone(ckpt["arch"], **ckpt.get("kwargs", {}))
        again.load_state_dict(torch.load(out, map_location="cpu", weights_only=True), strict=True)
        with torch.no_grad():
            return float((again.eval()(x) - ref).abs().max())
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("ONNX export needs onnx and onnxruntime: pip install 'facekit[onnx]'") from None
    export_onnx(net, out, size)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x.numpy()})[0]
    return float(abs(got - ref.numpy()).max())
