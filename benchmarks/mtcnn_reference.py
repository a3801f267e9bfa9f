"""Reference MTCNN outputs from the `mtcnn` package itself (ipazc/mtcnn 1.0, TensorFlow), kept as the fixture
`tests/data/mtcnn_reference.json` that facekit's detector is tested against (tests/test_mtcnn_reference.py).

It needs TensorFlow, which facekit does not: run it in an environment of its own (it imports nothing of facekit):

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu "mtcnn==1.0.0" lz4 pillow
    /tmp/tfenv/bin/python benchmarks/mtcnn_reference.py             # writes tests/data/mtcnn_reference.json

Images: every unaligned photo of ../shared/data (aligned chips and the deepface identity set left out), read with
Pillow as RGB uint8 and given to `MTCNN().detect_faces` as arrays (the same pixels facekit reads), with the
package's defaults: min_face_size 20, thresholds 0.6 / 0.7 / 0.8, scale factor 0.709, boxes fitted to the image.
Also prints the reference's landmark error on dlib's 43 hand-annotated faces (the derivation is in
`landmark_error` below; tests/test_mtcnn_reference.py computes facekit's the same way).
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "tests" / "data" / "mtcnn_reference.json"
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
SKIP = ("johns", "aligned", "Tom_Hanks", "deepface/tests/unit/dataset")
DLIB_XML = ("dlib/examples/faces/training_with_face_landmarks.xml", "dlib/examples/faces/testing_with_face_landmarks.xml")


def photos() -> list[str]:
    return sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*")
                  if p.suffix.lower() in SUFFIXES and p.is_file() and not any(s in p.as_posix() for s in SKIP))


def read_rgb(rel: str) -> np.ndarray:
    with Image.open(DATA / rel) as im:
        return np.asarray(im.convert("RGB"))


def dlib_ground_truth() -> list[dict]:
    """dlib's 43 annotated faces: box and the 5 MTCNN points from the 68 (eye centre = mean of its 6 points,
    nose tip = 30, mouth corners = 48 and 54), image-left first as MTCNN orders them."""
    faces = []
    for xml in DLIB_XML:
        for image in ET.parse(DATA / xml).getroot().iter("image"):
            for box in image.iter("box"):
                pts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in box.iter("part")}
                p = np.array([pts[i] for i in range(68)])
                five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
                t, l, w, h = (float(box.get(k)) for k in ("top", "left", "width", "height"))
                faces.append({"image": f"dlib/examples/faces/{image.get('file')}", "box": [l, t, l + w, t + h],
                              "landmarks": five.tolist()})
    return faces


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of xyxy boxes (continuous areas)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def landmark_error(truth: list[dict], found: dict[str, list[dict]]) -> tuple[float, int, list[float]]:
    """Mean over annotated faces of the mean distance of the 5 points / inter-ocular distance (eye centres).
    Each annotated face takes the detection of its image with the highest box IoU (at least 0.3; each detection
    used once, greedily by IoU); a face with none is missed. Returns (mean error, faces found, per-face errors)."""
    errors, used = [], set()
    pairs = []
    for i, face in enumerate(truth):
        dets = found.get(face["image"], [])
        if dets:
            ious = iou(np.array([face["box"]]), np.array([d["box"] for d in dets]))[0]
            pairs += [(float(v), i, j) for j, v in enumerate(ious) if v >= 0.3]
    match: dict[int, dict] = {}
    for v, i, j in sorted(pairs, reverse=True):
        if i not in match and (truth[i]["image"], j) not in used:
            match[i] = found[truth[i]["image"]][j]
            used.add((truth[i]["image"], j))
    for i, face in enumerate(truth):
        if i in match:
            gt, pred = np.array(face["landmarks"]), np.array(match[i]["landmarks"])
            errors.append(float(np.linalg.norm(pred - gt, axis=1).mean() / np.linalg.norm(gt[0] - gt[1])))
    return float(np.mean(errors)) if errors else float("nan"), len(errors), errors


def main() -> None:
    try:
        import tensorflow as tf
        from mtcnn import MTCNN
        import mtcnn
    except ImportError:
        sys.exit("needs TensorFlow and the mtcnn package; see this script's docstring for the environment")
    detector = MTCNN()
    results: dict[str, list[dict]] = {}
    shapes = {}
    for rel in photos():
        image = read_rgb(rel)
        shapes[rel] = list(image.shape[:2])
        rows = detector.detect_faces(image, box_format="xyxy", output_type="numpy")
        results[rel] = [{"box": [float(v) for v in r[1:5]], "score": float(r[5]),
                         "landmarks": [[float(r[6 + k]), float(r[11 + k])] for k in range(5)]} for r in rows]
        print(f"{rel}: {len(rows)} faces", flush=True)
    truth = dlib_ground_truth()
    err, n, per_face = landmark_error(truth, results)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "made_by": "benchmarks/mtcnn_reference.py",
        "mtcnn": getattr(mtcnn, "__version__", "1.0.0"), "tensorflow": tf.__version__,
        "settings": {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.8], "scale_factor": 0.709},
        "shapes": shapes, "faces": results,
        "dlib_landmark_error": {"mean": err, "found": n, "annotated": len(truth), "per_face": per_face},
    }, indent=1))
    total = sum(len(v) for v in results.values())
    print(f"{len(results)} photos, {total} faces -> {OUT}")
    print(f"dlib's annotated faces: {n}/{len(truth)} found, mean inter-ocular-normalised landmark error {err:.4f}")


if __name__ == "__main__":
    main()
