"""``facekit aggregate`` and the benchmarks' aggregator method: sets of aligned faces -> one face per set.

Sets of different sizes share a forward pass (padded, with the mask the aggregator's masked max ignores). Sets
larger than ``max_set`` are subsampled evenly (the paper aggregates N = 10; memory grows with N)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facekit.align.templates import Template
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.models.aggregator import FaceAggregator

AGGREGATOR_FORMAT = "facekit-aggregator-v1"


@dataclass
class Aggregator:
    net: FaceAggregator
    image_size: int
    extractor: str  # the spec of the feature extractor it was trained with
    device: torch.device
    fingerprint: str = ""  # sha256 of the file (first 16 hex digits)
    template: Template | None = None  # the alignment of its input and output faces (None: the extractor's own)

    @torch.inference_mode()
    def fuse(self, sets: list[np.ndarray], batch: int = 8, max_set: int = 64) -> np.ndarray:
        """Sets of uint8 (n_i, S, S, 3) crops -> uint8 (len(sets), S, S, 3) aggregated faces."""
        out = []
        for s in range(0, len(sets), batch):
            chunk = [subsample(x, max_set) for x in sets[s:s + batch]]
            n = max(len(x) for x in chunk)
            faces = torch.zeros(len(chunk), n, 3, self.image_size, self.image_size)
            mask = torch.zeros(len(chunk), n, dtype=torch.bool)
            for i, x in enumerate(chunk):
                faces[i, :len(x)] = torch.from_numpy(resize_all(x, self.image_size)).permute(0, 3, 1, 2).float()
                mask[i, :len(x)] = True
            agg = self.net((faces.to(self.device) - 127.5) / 127.5, mask.to(self.device))
            out.append((agg * 127.5 + 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.image_size, self.image_size, 3), np.uint8)


def subsample(x: np.ndarray, k: int) -> np.ndarray:
    return x if len(x) <= k else x[np.linspace(0, len(x) - 1, k).round().astype(int)]


def resize_all(crops_nhwc: np.ndarray, size: int) -> np.ndarray:
    if crops_nhwc.shape[1] == size and crops_nhwc.shape[2] == size:
        return crops_nhwc
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR)) for c in crops_nhwc])


def save_aggregator(path: Path, net: FaceAggregator, widths: tuple[int, ...], stem: int, image_size: int,
                    extractor: str, template: Template | None = None) -> None:
    blob = {"format": AGGREGATOR_FORMAT, "widths": list(widths), "stem": stem, "image_size": image_size,
            "extractor": extractor, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}
    if template is not None:
        blob["template"] = {"name": template.name, "size": template.size,
                            "points": [list(p) for p in template.points_5x2]}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_aggregator(path: Path, device: torch.device | str = "cpu") -> Aggregator:
    """A run's ``aggregator.pt`` (or the run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "aggregator.pt"
    if not path.is_file():
        raise InputError(f"{path}: aggregator file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"{path}: cannot load ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    if not isinstance(blob, dict) or blob.get("format") != AGGREGATOR_FORMAT:
        raise InputError(f"{path}: not a facekit aggregator (format {AGGREGATOR_FORMAT}); a train aggregator "
                         f"run's aggregator.pt is one")
    net = FaceAggregator(tuple(blob["widths"]), blob["stem"])
    try:
        net.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not match the aggregator ({str(err).splitlines()[0][:160]})") from None
    device = torch.device(device)
    from facekit.provenance import file_digest

    t = blob.get("template")
    template = Template(t["name"], int(t["size"]), tuple(tuple(map(float, p)) for p in t["points"])) if t else None
    return Aggregator(net.eval().to(device), int(blob["image_size"]), blob.get("extractor", ""), device,
                      file_digest(path), template)
