"""Rebuild facekit/assets/sample.mp4 from three real photos in ../shared/data (see facekit/assets/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from facekit.video.synth import photo_clip, write_video

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOS = [
    "facenet-pytorch/data/test_images/angelina_jolie/1.jpg",
    "insightface/python-package/insightface/data/images/t1.jpg",
    "facenet-pytorch/data/test_images/paul_rudd/1.jpg",
]

if __name__ == "__main__":
    if not DATA.is_dir():
        sys.exit(f"{DATA}: shared data not found")
    frames = photo_clip([Image.open(DATA / p) for p in PHOTOS], 30, (480, 270))
    print(write_video(ROOT / "facekit" / "assets" / "sample.mp4", frames, fps=12))
