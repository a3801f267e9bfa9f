"""facekit's Python API: the functions a notebook needs, importable from ``facekit`` (``facekit.detect_faces`` ...).

They are the library functions the CLI calls, re-exported (or a few lines over them): a command and a script
give the same result. Everything is imported on first use, so ``import facekit`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facekit.bench.common import verification_accuracy
from facekit.detect.mtcnn import MTCNN, Detections
from facekit.embed.extractors import FeatureExtractor, load_extractor
from facekit.manifests.io import read_manifest
from facekit.manifests.query import run_query as query
from facekit.pipeline.config import ExtractConfig
from facekit.pipeline.extract_sequences import RunSummary, extract_sequences
from facekit.video import sample_video

__all__ = ["ExtractConfig", "FeatureExtractor", "RunSummary", "crop_faces", "detect_faces", "extract_sequences",
           "load_extractor", "query", "read_frame", "read_manifest", "sample_video", "verify"]

_DETECTORS: dict[tuple, MTCNN] = {}


def detect_faces(image_hwc: np.ndarray, min_face_size: float = 20.0, device: str = "cpu") -> Detections:
    """Faces in one uint8 RGB image (H, W, 3): ``boxes_xyxy`` (n, 4), ``scores`` (n,), ``landmarks_5x2`` (n, 5, 2)
    (left eye, right eye, nose, left mouth, right mouth), MTCNN as ``extract-sequences`` runs it."""
    key = (float(min_face_size), str(device))
    if key not in _DETECTORS:
        _DETECTORS[key] = MTCNN(device=device, min_face_size=min_face_size)
    return _DETECTORS[key].detect(np.asarray(image_hwc, np.uint8))[0]


def crop_faces(image_hwc: np.ndarray, landmarks_n5x2: np.ndarray, template: str = "arcface",
          size: int | None = None) -> np.ndarray:
    """Crops (n, S, S, 3) uint8 of the faces with these landmarks, aligned to ``template`` (arcface 112,
    seqface 144, dlib 150; ``size`` rescales it)."""
    from facekit.align import align_faces, get_template

    marks = np.asarray(landmarks_n5x2, np.float64).reshape(-1, 5, 2)
    crops = align_faces([np.asarray(image_hwc, np.uint8)], np.zeros(len(marks), np.int64), marks,
                        get_template(template, size))
    return crops.permute(0, 2, 3, 1).numpy()


def read_frame(video: str | Path, index: int = 0) -> np.ndarray:
    """Frame ``index`` of a video as uint8 RGB (H, W, 3)."""
    from facekit.errors import InputError
    from facekit.video.decode import VideoStream

    for idx, frames, _ in VideoStream(video).batches(16):
        if idx[-1] >= index:
            return frames[index - int(idx[0])]
    raise InputError(f"{video}: no frame {index}")


def verify(feats_a: np.ndarray, feats_b: np.ndarray, same: np.ndarray, folds: np.ndarray,
           threshold: str = "kfold") -> dict:
    """Verification accuracy of feature pairs (one row per pair; any scale, normalised here) as the benchmarks
    compute it: ``kfold`` (insightface / FaceNet: squared distances, threshold from the other folds) or
    ``best-on-all`` (SeqFace's evaluate.py). Returns the metrics dict of the benchmark reports."""
    from facekit.metrics import l2_normalise

    metrics, convention = verification_accuracy(l2_normalise(np.asarray(feats_a, np.float32)),
                                                l2_normalise(np.asarray(feats_b, np.float32)),
                                                np.asarray(same, bool), np.asarray(folds), threshold)
    return {**metrics, "convention": convention}
