"""``facekit export``: a feature extractor (a facekit model.pt, or any PyTorch extractor spec such as
``dlib-torch:default`` or ``iresnet50:backbone.pth``) -> a plain state_dict or ONNX, verified against the original.

The ONNX graph takes what every facekit extractor takes: RGB crops (B, 3, S, S) scaled (x - 127.5) / 127.5, as
insightface's ONNX models do, and carries the alignment in its metadata (``facekit.template``,
``facekit.input_size``, ``facekit.flip``), which ``--model onnx:FILE`` reads back."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from facekit.embed.extractors import FeatureExtractor, load_extractor
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.models.checkpoint import export_onnx

ONNX_METADATA = ("template", "input_size", "flip")


class ExtractorModule(nn.Module):
    """An extractor's ``forward`` ([-1, 1] crops -> features) as one module, for tracing."""

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.net = extractor.module
        self._forward = extractor.forward

    def forward(self, x_b3hw: torch.Tensor) -> torch.Tensor:
        return self._forward(x_b3hw)


def extractor_spec(model: str) -> str:
    """A model.pt, a run directory or an extractor spec -> an extractor spec."""
    path = Path(model)
    if path.is_dir():
        path = path / "model.pt"
    if path.is_file():
        return f"facekit:{path}"
    if ":" not in model:
        raise InputError(f"{model}: model file not found (give a model.pt, a run directory or an extractor spec "
                         f"such as dlib-torch:default)")
    return model


def export_model(model: str, out: Path, fmt: str, seed: int = 0) -> float:
    """Write ``out``; return the max abs difference between the export and the original on random inputs."""
    ext = load_extractor(extractor_spec(model))
    if ext.module is None:
        raise InputError(f"{model}: only PyTorch extractors can be exported (this one is {ext.name})")
    ext.module.eval()
    size = ext.input_size
    x = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        ref = ext.forward(x)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "state_dict":
        with atomic_path(out) as tmp:
            torch.save(ext.module.state_dict(), tmp)
        # the network, reloaded from the file just written, on the same random faces
        ext.module.load_state_dict(torch.load(out, map_location="cpu", weights_only=True), strict=True)
        with torch.no_grad():
            return float((ext.forward(x) - ref).abs().max())
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise InputError("ONNX export needs onnx and onnxruntime: pip install 'facekit[onnx]'") from None
    with atomic_path(out) as tmp:
        export_onnx(ExtractorModule(ext), tmp, size)
        proto = onnx.load(str(tmp))
        for key, value in zip(ONNX_METADATA, (ext.template, size, int(ext.flip))):
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"facekit.{key}", str(value)
        onnx.save(proto, str(tmp))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x.numpy()})[0]
    return float(abs(got - ref.numpy()).max())
