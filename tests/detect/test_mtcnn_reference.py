"""facekit's MTCNN against the ``mtcnn`` package it takes its weights from (the reference implementation,
ipazc/mtcnn 1.0 on TensorFlow): the package's own outputs are the fixture ``tests/data/mtcnn_reference.json``,
made by ``benchmarks/mtcnn_reference.py`` in an environment with TensorFlow. Also the package's own numpy helpers
(NMS, squaring, box regression), imported without TensorFlow, against facekit's."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import linear_sum_assignment

from facekit.bench.landmarks import landmark_errors, read_dlib_examples
from facekit.detect.boxes import apply_regression, iou_matrix, nms, to_square
from facekit.detect.mtcnn import MTCNN
from tests.conftest import shared

REFERENCE = json.loads((Path(__file__).resolve().parents[1] / "data" / "mtcnn_reference.json").read_text())


def reference_module(name: str):
    """A numpy-only module of the mtcnn package (``mtcnn/__init__`` imports TensorFlow, so its packages are
    stood in for while the module loads)."""
    root = Path(importlib.util.find_spec("mtcnn").submodule_search_locations[0])
    saved = {k: sys.modules.get(k) for k in ("mtcnn", "mtcnn.utils")}
    try:
        for pkg, path in (("mtcnn", root), ("mtcnn.utils", root / "utils")):
            stub = types.ModuleType(pkg)
            stub.__path__ = [str(path)]
            sys.modules[pkg] = stub
        return importlib.import_module(f"mtcnn.utils.{name}")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        sys.modules.pop(f"mtcnn.utils.{name}", None)


@pytest.fixture(scope="module")
def full_resolution():
    return MTCNN(min_face_size=20)  # max_side None: the full-resolution path, the package's defaults


def _agreement(detector: MTCNN, images: dict[str, np.ndarray]) -> tuple[list, list[float], list[float]]:
    """(images whose face counts differ, box IoU and mean landmark distance (px) of every matched face)."""
    miscounted, ious, dists = [], [], []
    for key, image in images.items():
        mine = detector.detect(image)[0]
        ref = REFERENCE["faces"][key]
        if len(mine) != len(ref):
            miscounted.append((key, len(mine), len(ref)))
        if len(mine) and len(ref):
            m = iou_matrix(mine.boxes_xyxy, np.array([f["box"] for f in ref]))
            rows, cols = linear_sum_assignment(-m)
            for i, j in zip(rows, cols):
                ious.append(m[i, j])
                dists.append(float(np.linalg.norm(mine.landmarks_5x2[i] - np.array(ref[j]["landmarks"]),
                                                  axis=1).mean()))
    return miscounted, ious, dists


def test_sample_clip_faces_equal_the_package(full_resolution, sample_frames):
    """Any checkout: the embedded clip's three shots (8 faces), decoded by the same PyAV reader."""
    frames = {key: sample_frames[int(key.split("#")[1])] for key in REFERENCE["faces"] if key.startswith("sample.mp4#")}
    miscounted, ious, dists = _agreement(full_resolution, frames)
    assert miscounted == [] and len(ious) == 8
    assert min(ious) >= 0.98 and max(dists) <= 1.0


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_photos_same_faces_boxes_and_landmarks_as_the_package(full_resolution):
    """Every unaligned photo of ../shared/data (66 photos, 142 faces): the same faces in every photo, box IoU
    >= 0.98 for each, landmarks within 1 px at the median (measured: IoU >= 0.9997, landmarks <= 0.05 px)."""
    photos = {k: np.asarray(Image.open(shared(k)).convert("RGB")) for k in REFERENCE["faces"] if "#" not in k}
    miscounted, ious, dists = _agreement(full_resolution, photos)
    assert miscounted == []
    assert len(ious) == 142 and min(ious) >= 0.98
    assert np.median(dists) <= 1.0 and np.percentile(dists, 95) <= 1.0


@pytest.mark.shared_data
def test_landmarks_on_dlib_ground_truth_at_most_the_reference_error(full_resolution):
    """dlib's 43 hand-annotated faces (68 points -> 5): all found; mean inter-ocular-normalised landmark error at
    most the package's (0.0588, kept in the fixture; float noise of 1e-4 allowed)."""
    root = shared("dlib/examples/faces")
    truth = read_dlib_examples(root, prefix="dlib/examples/faces/")
    assert len(truth) == 43
    found = {}
    for image in sorted({f["image"] for f in truth}):
        d = full_resolution.detect(np.asarray(Image.open(shared(image)).convert("RGB")))[0]
        found[image] = [{"box": b.tolist(), "landmarks": lm.tolist()} for b, lm in zip(d.boxes_xyxy, d.landmarks_5x2)]
    errors = landmark_errors(truth, found)
    assert None not in errors
    reference = REFERENCE["dlib_landmark_error"]
    assert reference["found"] == 43
    assert np.mean(errors) <= reference["mean"] + 1e-4


def test_landmark_error_by_hand():
    """The error's definition on a face worked out by hand: eyes 10 px apart, every point 1 px off -> 0.1."""
    p68 = np.zeros((68, 2))
    p68[36:42], p68[42:48], p68[30], p68[48], p68[54] = [0, 0], [10, 0], [5, 5], [1, 10], [9, 10]
    face = read_like = {"image": "a", "box": [0, 0, 10, 10], "landmarks": None}
    from facekit.bench.landmarks import five_points

    face["landmarks"] = five_points(p68).tolist()
    moved = {"a": [{"box": [0, 0, 10, 10], "landmarks": (five_points(p68) + [0, 1]).tolist()}]}
    assert landmark_errors([read_like], moved) == [pytest.approx(0.1)]
    assert landmark_errors([face], {"a": [{"box": [50, 50, 60, 60], "landmarks": face["landmarks"]}]}) == [None]


def test_nms_square_and_regression_equal_the_package_helpers():
    bboxes = reference_module("bboxes")
    rng = np.random.default_rng(0)
    for method in ("union", "min"):
        xy = rng.uniform(0, 100, (200, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (200, 2))], 1)
        scores = rng.uniform(size=200).astype(np.float32)
        table = np.concatenate([np.zeros((200, 1)), boxes, scores[:, None]], 1)
        ref = bboxes.smart_nms_from_bboxes(table, threshold=0.5, method=method, initial_sort=True)
        keep = nms(boxes, scores, 0.5, method=method)
        np.testing.assert_array_equal(boxes[keep], ref[:, 1:5])
    np.testing.assert_allclose(to_square(boxes), bboxes.resize_to_square(table)[:, 1:5])
    reg = rng.normal(0, 0.1, (200, 4))
    np.testing.assert_allclose(apply_regression(boxes, reg), bboxes.adjust_bboxes(table, reg)[:, 1:5])
