"""What facekit's two detector speed tricks cost in landmark error, against the reference's own spread.

    python benchmarks/mtcnn_tricks.py

1. The shrink (``detect_max_side`` 1280: P-Net and R-Net on the frame shrunk by an integer factor, O-Net on the full
   frame). Ground truth: dlib's 43 annotated faces with the images enlarged 3x (bicubic; 1,125-1,500 px, so the
   shrink applies with factor 2), error of the full-resolution path vs the shrunk path, inter-ocular-normalised.
2. Tracked O-Net (``detect_every`` 4: O-Net alone on the boxes the tracker predicts between full detections).
   Ground truth: on dlib's faces, O-Net alone from the full path's box moved by up to 5% of its size in x and y
   (a tracker's prediction error; seeded), against the full path.
3. For scale, not for ground truth: ``extract-sequences`` on the 1080p walking video with the defaults vs
   ``--detect-every 1 --detect-max-side 0`` (full MTCNN on every frame at full resolution): how far the landmarks
   of the same faces on the same frames move, inter-ocular-normalised.
The reference's spread: the standard deviation of the ``mtcnn`` package's per-face error on dlib's faces (from
tests/data/mtcnn_reference.json). A trick is kept when its added error is inside that spread.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facekit.bench.landmarks import landmark_errors, read_dlib_examples
from facekit.detect.boxes import iou_matrix
from facekit.detect.mtcnn import MTCNN

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FACES = DATA / "dlib" / "examples" / "faces"
VIDEO = DATA / "facenet-pytorch" / "examples" / "video.mp4"


def ground_truth_errors(detector: MTCNN, enlarge: int) -> list[float | None]:
    truth = read_dlib_examples(FACES)
    for f in truth:
        f["box"] = [v * enlarge for v in f["box"]]
        f["landmarks"] = (np.asarray(f["landmarks"]) * enlarge).tolist()
    found = {}
    for name in sorted({f["image"] for f in truth}):
        with Image.open(FACES / name) as im:
            im = im.convert("RGB")
            image = np.asarray(im.resize((im.width * enlarge, im.height * enlarge), Image.BICUBIC))
        d = detector.detect(image)[0]
        found[name] = [{"box": b.tolist(), "landmarks": lm.tolist()} for b, lm in zip(d.boxes_xyxy, d.landmarks_5x2)]
    return landmark_errors(truth, found)


def tracked_errors(detector: MTCNN, move: float = 0.05, seed: int = 0) -> tuple[list, list]:
    """(full path errors, O-Net-alone errors from the full path's boxes moved by up to ``move`` of their size)."""
    truth = read_dlib_examples(FACES)
    rng = np.random.default_rng(seed)
    full, tracked = {}, {}
    for name in sorted({f["image"] for f in truth}):
        image = np.asarray(Image.open(FACES / name).convert("RGB"))
        d = detector.detect(image)[0]
        side = (d.boxes_xyxy[:, 2:] - d.boxes_xyxy[:, :2]).mean(1, keepdims=True)
        shift = rng.uniform(-move, move, (len(d), 2)) * side
        r = detector.refine(image, d.boxes_xyxy + np.concatenate([shift, shift], 1))
        full[name] = [{"box": b.tolist(), "landmarks": lm.tolist()} for b, lm in zip(d.boxes_xyxy, d.landmarks_5x2)]
        tracked[name] = [{"box": b.tolist(), "landmarks": lm.tolist()} for b, lm in zip(r.boxes_xyxy, r.landmarks_5x2)]
    return landmark_errors(truth, full), landmark_errors(truth, tracked)


def tracked_vs_full(out: Path) -> np.ndarray:
    from facekit.manifests import read_manifest
    from facekit.pipeline.config import ExtractConfig
    from facekit.pipeline.extract_sequences import extract_sequences

    runs = {"default": ExtractConfig(), "full": ExtractConfig(detect_every=1, detect_max_side=None)}
    faces = {}
    for name, cfg in runs.items():
        extract_sequences([VIDEO], out / name, cfg, progress=False)
        faces[name] = read_manifest(out / name, "faces")
    shifts = []
    full = faces["full"].groupby("frame_index")
    for frame, rows in faces["default"].groupby("frame_index"):
        if frame not in full.groups:
            continue
        ref = full.get_group(frame)
        box = lambda df: df[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy()  # noqa: E731
        m = iou_matrix(box(rows), box(ref))
        for i, j in zip(*np.nonzero(m >= 0.5)):
            a = np.asarray(rows["landmarks_5x2"].iloc[i]).reshape(5, 2)
            b = np.asarray(ref["landmarks_5x2"].iloc[j]).reshape(5, 2)
            shifts.append(np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(b[0] - b[1]))
    return np.asarray(shifts)


def main() -> None:
    reference = json.loads((ROOT / "tests" / "data" / "mtcnn_reference.json").read_text())["dlib_landmark_error"]
    spread = float(np.std(reference["per_face"]))
    print(f"reference (mtcnn package) on dlib's 43 faces: mean error {reference['mean']:.4f}, "
          f"per-face spread (std) {spread:.4f}")
    full = ground_truth_errors(MTCNN(min_face_size=20), 3)
    shrunk = ground_truth_errors(MTCNN(min_face_size=20, max_side=1280), 3)
    both = [(a, b) for a, b in zip(full, shrunk) if a is not None and b is not None]
    diff = np.array([b - a for a, b in both])
    print(f"1. shrink to 1280 px (dlib faces enlarged 3x): found {sum(e is not None for e in full)}/43 full, "
          f"{sum(e is not None for e in shrunk)}/43 shrunk; mean error {np.mean([a for a, _ in both]):.4f} full, "
          f"{np.mean([b for _, b in both]):.4f} shrunk; added error mean {diff.mean():+.4f}, "
          f"median |added| {np.median(np.abs(diff)):.4f}")
    base, tracked = tracked_errors(MTCNN(min_face_size=20))
    pairs = [(a, b) for a, b in zip(base, tracked) if a is not None and b is not None]
    added = np.array([b - a for a, b in pairs])
    print(f"2. O-Net alone from a box 5% off (dlib faces): mean error {np.mean([a for a, _ in pairs]):.4f} full, "
          f"{np.mean([b for _, b in pairs]):.4f} tracked; added error mean {added.mean():+.4f}, "
          f"median |added| {np.median(np.abs(added)):.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        shifts = tracked_vs_full(Path(tmp))
    print(f"3. defaults vs full MTCNN on every frame, 1080p video: {len(shifts)} faces, landmark shift / "
          f"inter-ocular median {np.median(shifts):.4f}, 90th percentile {np.percentile(shifts, 90):.4f}")
    print(f"added ground-truth error inside the reference's spread ({spread:.4f}): shrink "
          f"{abs(diff.mean()) < spread}, tracked O-Net {abs(added.mean()) < spread}")


if __name__ == "__main__":
    main()
