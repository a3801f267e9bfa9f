"""Reference MTCNN outputs from the `mtcnn` package itself (ipazc/mtcnn 1.0, TensorFlow), kept as the fixture
`tests/data/mtcnn_reference.json` that facekit's detector is tested against (tests/detect/test_mtcnn_reference.py).

It needs TensorFlow, which facekit does not: run it in an environment of its own. Of facekit it imports only two
numpy module, the landmark-error code, so both sides compute it the same way:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu "mtcnn==1.0.0" lz4 pillow "av==18.1.0"
    /tmp/tfenv/bin/python benchmarks/mtcnn_reference.py             # writes tests/data/mtcnn_reference.json

Images: frames 0, 30 and 60 of facekit's embedded sample clip (so a checkout without ../shared/data still has a
case), and every unaligned photo of ../shared/data (aligned chips and the deepface identity set left out), read with
Pillow as RGB uint8 and given to `MTCNN().detect_faces` as arrays (the same pixels facekit reads), with the
package's defaults: min_face_size 20, thresholds 0.6 / 0.7 / 0.8, scale factor 0.709, boxes fitted to the image.
Also prints the reference's landmark error on dlib's 43 hand-annotated faces (the derivation is in
`facekit.bench.landmarks`; tests/detect/test_mtcnn_reference.py computes facekit's the same way).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from facekit.bench.landmarks import landmark_errors, read_dlib_faces  # noqa: E402  (numpy only)

SAMPLE = ROOT / "facekit" / "assets" / "sample.mp4"
SAMPLE_FRAMES = (0, 30, 60)
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "tests" / "data" / "mtcnn_reference.json"
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
SKIP = ("johns", "aligned", "Tom_Hanks", "deepface/tests/unit/dataset")
DLIB_XML = ("dlib/examples/faces/training_with_face_landmarks.xml",
            "dlib/examples/faces/testing_with_face_landmarks.xml")


def photos() -> list[str]:
    return sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*")
                  if p.suffix.lower() in SUFFIXES and p.is_file() and not any(s in p.as_posix() for s in SKIP))


def read_rgb(rel: str) -> np.ndarray:
    with Image.open(DATA / rel) as im:
        return np.asarray(im.convert("RGB"))


def dlib_ground_truth() -> list[dict]:
    return [f for xml in DLIB_XML for f in read_dlib_faces(DATA / xml, prefix="dlib/examples/faces/")]


def sample_frames() -> dict[str, np.ndarray]:
    """Frames 0, 30 and 60 of facekit's embedded sample clip (one per shot), decoded as facekit's reader does
    (PyAV, ``to_ndarray(format="rgb24")``): the pixels tests/detect/test_mtcnn_reference.py decodes in any checkout."""
    import av

    with av.open(str(SAMPLE)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    return {f"sample.mp4#{i}": frames[i] for i in SAMPLE_FRAMES}


def main() -> None:
    try:
        import mtcnn
        import tensorflow as tf
        from mtcnn import MTCNN
    except ImportError:
        sys.exit("needs TensorFlow and the mtcnn package; see this script's docstring for the environment")
    detector = MTCNN()
    results: dict[str, list[dict]] = {}
    shapes = {}
    images = {**sample_frames(), **{rel: None for rel in photos()}}
    for rel, image in images.items():
        image = read_rgb(rel) if image is None else image
        shapes[rel] = list(image.shape[:2])
        rows = detector.detect_faces(image, box_format="xyxy", output_type="numpy")
        results[rel] = [{"box": [float(v) for v in r[1:5]], "score": float(r[5]),
                         "landmarks": [[float(r[6 + k]), float(r[11 + k])] for k in range(5)]} for r in rows]
        print(f"{rel}: {len(rows)} faces", flush=True)
    truth = dlib_ground_truth()
    per_face = landmark_errors(truth, results)
    found = [e for e in per_face if e is not None]
    err, n = float(np.mean(found)), len(found)
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
