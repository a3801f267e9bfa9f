"""Feature extractors: one interface, a registry of loaders keyed by the spec's prefix.

Specs (``--model``):
- ``iresnet50:/path/backbone.pth`` (also iresnet18/34/100): insightface ArcFace checkpoints, strict load;
- ``facekit:/path/model.pt``: a checkpoint written by ``facekit train`` / ``facekit export``;
- ``onnx:/path/model.onnx``: any ONNX embedder taking (B, 3, 112, 112) in [-1, 1] (needs ``onnxruntime``);
- ``dlib:default`` (or ``dlib:/path/dlib_face_recognition_resnet_model_v1.dat``): dlib's pretrained ResNet
  (128-d, same person below ~0.6 Euclidean distance) from the ``face-recognition-models`` package, on
  150x150 crops aligned to the ``dlib`` template (``pip install 'facekit[dlib]'``). Not differentiable.
- ``dlib-torch:default`` (or ``dlib-torch:/path/....dat``): the same network in PyTorch
  (``facekit.models.dlib_resnet``, weights read from the same ``.dat``; equal to dlib's descriptors to ~1e-7):
  batched, CPU or CUDA (``dlib-torch16:`` runs it in float16 there), differentiable, so it can be a frozen F or
  a backbone to train. Needs only the ``face-recognition-models`` package, not dlib.
Nothing is downloaded: weights come from the file the user names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from facekit.errors import InputError
from facekit.models.checkpoint import FACEKIT_FORMAT
from facekit.models.iresnet import LAYERS, iresnet
from facekit.models.mobilefacenet import VARIANTS, mobilefacenet
from facekit.provenance import file_digest
from facekit.registry import Registry


@dataclass
class FeatureExtractor:
    """Embeds aligned uint8 RGB crops (B, S, S, 3) -> (B, d) float32 (not normalised).

    ``flip``: the feature of a crop is emb(crop) + emb(mirrored crop) (insightface's evaluation protocol).
    ``template``/``input_size``: the alignment the model was trained on (facekit.align templates)."""

    name: str
    fingerprint: str  # identifies the weights: sha256 of the file (first 16 hex digits)
    forward: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, S, S) in [-1, 1] -> (B, d)
    template: str = "arcface"
    input_size: int = 112
    flip: bool = True
    device: torch.device = torch.device("cpu")
    module: torch.nn.Module | None = None  # the torch network behind ``forward`` (None for ONNX): trainers freeze it
    embed_uint8: Callable[[np.ndarray], np.ndarray] | None = None  # non-torch models: uint8 crops -> features

    def frozen(self) -> torch.nn.Module:
        """The network with gradients off and in eval mode, for use as a fixed loss network (gradients still flow
        through it to its input). Raises InputError for non-torch (ONNX) extractors."""
        if self.module is None:
            raise InputError(f"{self.name}: a differentiable (PyTorch) feature extractor is needed here, not ONNX")
        self.module.eval().requires_grad_(False)
        return self.module

    @torch.inference_mode()
    def embed(self, crops_bhwc: np.ndarray, batch: int = 64) -> np.ndarray:
        if self.embed_uint8 is not None:
            crops = np.asarray(crops_bhwc, np.uint8)
            f = self.embed_uint8(crops)
            return f + self.embed_uint8(np.ascontiguousarray(crops[:, :, ::-1])) if self.flip else f
        out = []
        for s in range(0, len(crops_bhwc), batch):
            x = torch.from_numpy(np.array(crops_bhwc[s:s + batch])).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
            f = self.forward(x)
            if self.flip:
                f = f + self.forward(torch.flip(x, dims=[3]))
            out.append(f.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _torch_load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"{path}: cannot load as a PyTorch checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:160]})") from None


def _strict(module: torch.nn.Module, state: dict, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = [line.strip() for line in str(err).splitlines() if line.strip()][1:2]
        detail = first[0][:200] if first else err
        raise InputError(f"{path}: weights do not match the architecture ({detail})") from None


def _load_iresnet(arch: str, path: Path, device: torch.device) -> FeatureExtractor:
    state = _torch_load(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    out = "fc.weight" if arch in LAYERS else "features.layers.2.weight"  # the embedding layer: its rows are d
    fc = state.get(out) if isinstance(state, dict) else None
    if fc is None:
        raise InputError(f"{path}: not an insightface {arch} backbone (no {out})")
    net = iresnet(arch, num_features=fc.shape[0]) if arch in LAYERS else mobilefacenet(arch, num_features=fc.shape[0])
    _strict(net, state, path)
    net.eval().to(device)
    return FeatureExtractor(arch, file_digest(path), net, device=device, module=net)


def _load_facekit(path: Path, device: torch.device) -> FeatureExtractor:
    from facekit.models import build_backbone

    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FACEKIT_FORMAT:
        raise InputError(f"{path}: not a facekit backbone checkpoint (format {FACEKIT_FORMAT})")
    net = build_backbone(ckpt["arch"], **ckpt.get("kwargs", {}))
    _strict(net, ckpt["state_dict"], path)
    net.eval().to(device)
    # embed() feeds (x - 127.5) / 127.5; rescale to the checkpoint's own normalisation
    mean, std = float(ckpt.get("mean", 127.5)), float(ckpt.get("std", 127.5))
    gain, shift = 127.5 / std, (127.5 - mean) / std

    def forward(x: torch.Tensor) -> torch.Tensor:
        return net(x * gain + shift)

    return FeatureExtractor(ckpt["arch"], file_digest(path), forward, template=ckpt.get("template", "arcface"),
                            input_size=int(ckpt.get("input_size", 112)), flip=bool(ckpt.get("flip", True)),
                            device=device, module=net)


def onnx_providers(device: torch.device, available: list[str]) -> list[str]:
    """onnxruntime's execution providers for ``device``: CUDA (on that GPU) where onnxruntime has it, then CPU."""
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _load_onnx(path: Path, device: torch.device) -> FeatureExtractor:
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("onnx models need onnxruntime: pip install onnxruntime") from None
    providers = onnx_providers(device, ort.get_available_providers())
    try:
        sess = ort.InferenceSession(str(path), providers=providers)
    except Exception as err:
        raise InputError(f"{path}: cannot load as ONNX ({str(err).splitlines()[0][:160]})") from None
    inp = sess.get_inputs()[0]
    meta = sess.get_modelmeta().custom_metadata_map  # written by `facekit export`; absent: insightface's layout
    size = int(meta.get("facekit.input_size", inp.shape[-1] if isinstance(inp.shape[-1], int) else 112))

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {inp.name: x.cpu().numpy()})[0])

    return FeatureExtractor(f"onnx:{path.name}", file_digest(path), forward,
                            template=meta.get("facekit.template", "arcface"), input_size=size,
                            flip=meta.get("facekit.flip", "1") == "1", device=device)


def dlib_model_path(rest: str, prefix: str = "dlib") -> Path:
    """``default`` -> the .dat of the installed face-recognition-models package; else the path given."""
    if rest == "default":
        import importlib.util

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None:
            raise InputError(f"{prefix}:default needs the face-recognition-models package: "
                             "pip install 'facekit[dlib]'")
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    else:
        path = Path(rest)
    if not path.is_file():
        raise InputError(f"{path}: dlib model file not found")
    return path


def _load_dlib_torch(rest: str, device: torch.device, half: bool = False) -> FeatureExtractor:
    from facekit.models.dlib_resnet import DlibFaceResNet, read_dlib_resnet

    path = dlib_model_path(rest, "dlib-torch")
    dtype = torch.float16 if half and device.type == "cuda" else torch.float32
    net = read_dlib_resnet(path).to(device, dtype)

    def forward(x: torch.Tensor) -> torch.Tensor:  # [-1, 1] -> pixels -> dlib's input scale
        return net(DlibFaceResNet.from_pixels(x * 127.5 + 127.5).to(dtype)).float()

    return FeatureExtractor("dlib_torch", file_digest(path), forward, template="dlib", input_size=150,
                            flip=False, device=device, module=net)


def _load_dlib(rest: str, device: torch.device) -> FeatureExtractor:
    try:
        import dlib
    except ImportError:
        raise InputError("dlib models need dlib and face-recognition-models: pip install 'facekit[dlib]'") from None
    path = dlib_model_path(rest)
    try:
        net = dlib.face_recognition_model_v1(str(path))
    except RuntimeError as err:
        raise InputError(f"{path}: not a dlib face recognition model ({str(err).splitlines()[0][:120]})") from None

    def embed_uint8(crops_bhwc: np.ndarray) -> np.ndarray:
        chips = [np.ascontiguousarray(c) for c in crops_bhwc]
        return np.asarray(net.compute_face_descriptor(chips), np.float32).reshape(len(chips), -1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        crops = (x * 127.5 + 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        return torch.from_numpy(embed_uint8(crops))

    return FeatureExtractor("dlib_resnet", file_digest(path), forward, template="dlib", input_size=150,
                            flip=False, device=torch.device("cpu"), embed_uint8=embed_uint8)


Loader = Callable[[str, torch.device], "FeatureExtractor"]  # (the spec after its prefix, device) -> extractor
EXTRACTORS: Registry[Loader] = Registry("extractor prefix")
"""prefix -> loader(rest of the spec, device): ``iresnet50:backbone.pth`` calls EXTRACTORS.get("iresnet50")."""


def _file(load: Callable[[Path, torch.device], "FeatureExtractor"]) -> Loader:
    """A loader whose spec names a file: a missing file is one line naming it."""
    def loader(rest: str, device: torch.device) -> FeatureExtractor:
        path = Path(rest)
        if not path.is_file():
            raise InputError(f"{path}: model file not found")
        return load(path, device)

    return loader


for _depth in (*LAYERS, *VARIANTS):  # insightface's public backbone.pth files: iresnet*, mbf, mbf_large
    EXTRACTORS.register(_depth)(_file(lambda path, device, _d=_depth: _load_iresnet(_d, path, device)))
EXTRACTORS.register("facekit")(_file(_load_facekit))
EXTRACTORS.register("onnx")(_file(_load_onnx))
EXTRACTORS.register("dlib")(_load_dlib)
EXTRACTORS.register("dlib-torch")(_load_dlib_torch)
EXTRACTORS.register("dlib-torch16")(lambda rest, device: _load_dlib_torch(rest, device, half=True))  # float16 on CUDA


def default_embedder() -> str:
    """``dlib-torch:default`` where face-recognition-models is installed (no dlib needed), else ``dlib:default``."""
    import importlib.util

    return "dlib-torch:default" if importlib.util.find_spec("face_recognition_models") else "dlib:default"


def load_extractor(spec: str, device: torch.device | str = "cpu") -> FeatureExtractor:
    """``prefix:path`` -> a ready extractor (see the module docstring for prefixes)."""
    prefix, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InputError(f"--model {spec!r}: expected PREFIX:PATH, e.g. iresnet50:backbone.pth "
                         f"(prefixes: {', '.join(EXTRACTORS.names())})")
    return EXTRACTORS.get(prefix, f"--model {spec!r}")(rest, torch.device(device))
