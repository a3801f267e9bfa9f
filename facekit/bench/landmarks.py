"""Landmark accuracy against hand annotations: dlib's 68-point face files reduced to MTCNN's five points, and the
mean inter-ocular-normalised error. Pure numpy (the reference script runs it beside TensorFlow, without torch).

Derivation (the one issue 17 gives): eye centre = mean of the eye's 6 points (36-41, 42-47), nose tip = point 30,
mouth corners = points 48 and 54; image-left first, as MTCNN orders its points. A face's error is the mean
distance of its 5 points divided by the distance between the two annotated eye centres.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np


def five_points(p68: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG 300-W points -> (5, 2): eye centres, nose tip, mouth corners."""
    return np.stack([p68[36:42].mean(0), p68[42:48].mean(0), p68[30], p68[48], p68[54]])


def read_dlib_faces(xml: Path, prefix: str = "") -> list[dict]:
    """Faces of a dlib imglab file with 68 parts: ``{"image": prefix + file, "box": xyxy, "landmarks": (5, 2)}``."""
    faces = []
    for image in ET.parse(xml).getroot().iter("image"):
        for box in image.iter("box"):
            pts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in box.iter("part")}
            top, left, w, h = (float(box.get(k)) for k in ("top", "left", "width", "height"))
            faces.append({"image": prefix + image.get("file"), "box": [left, top, left + w, top + h],
                          "landmarks": five_points(np.array([pts[i] for i in range(68)])).tolist()})
    return faces


DLIB_EXAMPLE_FILES = ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml")  # 43 faces together


def read_dlib_examples(folder: Path, prefix: str = "") -> list[dict]:
    """The faces of both of dlib's annotated example files in ``folder`` (dlib's ``examples/faces``)."""
    return [f for xml in DLIB_EXAMPLE_FILES for f in read_dlib_faces(Path(folder) / xml, prefix)]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a, area_b = np.prod(a[:, 2:] - a[:, :2], axis=1), np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def landmark_errors(truth: list[dict], found: dict[str, list[dict]], min_iou: float = 0.3) -> list[float | None]:
    """Per annotated face, its inter-ocular-normalised landmark error, or None when it was not found.

    ``found``: image -> detections ``{"box": xyxy, "landmarks": (5, 2)}``. Annotated faces and detections of an
    image are matched greedily by box IoU (highest first, each used once, at least ``min_iou``)."""
    pairs = []
    for i, face in enumerate(truth):
        dets = found.get(face["image"], [])
        if dets:
            ious = _iou(np.array([face["box"]], float), np.array([d["box"] for d in dets], float))[0]
            pairs += [(float(v), i, j) for j, v in enumerate(ious) if v >= min_iou]
    match: dict[int, dict] = {}
    used: set = set()
    for _, i, j in sorted(pairs, reverse=True):
        key = (truth[i]["image"], j)
        if i not in match and key not in used:
            match[i], _ = found[truth[i]["image"]][j], used.add(key)
    errors: list[float | None] = []
    for i, face in enumerate(truth):
        if i not in match:
            errors.append(None)
            continue
        gt, pred = np.asarray(face["landmarks"], float), np.asarray(match[i]["landmarks"], float)
        errors.append(float(np.linalg.norm(pred - gt, axis=1).mean() / np.linalg.norm(gt[0] - gt[1])))
    return errors
