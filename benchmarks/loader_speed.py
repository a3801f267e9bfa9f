"""How fast one data-loader worker turns stored crops into training samples, per storage format (issue 28).

    python benchmarks/loader_speed.py [--images 600]

Crops at 112 and 144 px, cut from the real photos of ../shared/data (deepface's test set: random squares around
the middle, so PNG and JPEG sizes are those of real faces), or, without it, generated (smooth noise), are stored
four ways: PNG files (what `build identities` wrote before), JPEG files (quality 95, what it writes now),
packed shards (`facekit pack`: the JPEG bytes in RecordIO) and an insightface-style `.rec`. One process reads
every sample the way a loader worker does (`load(i, size)`, the random crop and flip, the uint8 CHW tensor), in a
seeded random order, three rounds, median. Prints samples/s per worker, the ratio to PNG files measured in the
same process, and the workers one GPU needs at 3,000 images/s. Target: packed JPEG at least 2x PNG files.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from facekit.datasets.crops import CropFiles, PackedCrops
from facekit.datasets.pack import pack_files
from facekit.images import to_chw
from facekit.recordio import RecordWriter, ir_record, read_face_records

GPU_RATE = 3000  # images/s one GPU trains on (an IResNet-50 at 112 px, mixed precision: the order of magnitude)


PHOTOS = sorted((Path(__file__).resolve().parents[2] / "shared" / "data" / "deepface" / "tests" / "unit" /
                 "dataset").glob("img*.jpg"))


def face_like(rng: np.random.Generator, size: int) -> Image.Image:
    if PHOTOS:  # a square of 40-70% of the photo's short side near its middle, resized
        with Image.open(PHOTOS[rng.integers(len(PHOTOS))]) as im:
            im = im.convert("RGB")
            side = int(min(im.size) * rng.uniform(0.4, 0.7))
            x0 = int((im.size[0] - side) * rng.uniform(0.3, 0.7))
            y0 = int((im.size[1] - side) * rng.uniform(0.2, 0.6))
            return im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR)
    noise = Image.fromarray(rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8))
    return noise.resize((size, size), Image.BICUBIC).filter(ImageFilter.GaussianBlur(1.5))


def write_stores(root: Path, n: int, size: int) -> dict:
    rng = np.random.default_rng(size)
    png, jpg = [], []
    for i in range(n):
        im = face_like(rng, size)
        p, j = root / "png" / f"{i}.png", root / "jpg" / f"{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True), j.parent.mkdir(parents=True, exist_ok=True)
        im.save(p, format="PNG"), im.save(j, format="JPEG", quality=95)
        png.append(p.name), jpg.append(j.name)
    pack_files(root / "jpg", "faces", jpg)  # what `facekit pack` writes
    with RecordWriter(root / "train.rec") as rec:  # insightface's layout: header, images, one identity
        rec.write(0, ir_record([float(n + 1), float(n + 2)]))
        for key, name in enumerate(jpg, start=1):
            rec.write(key, ir_record(0.0, (root / "jpg" / name).read_bytes()))
        rec.write(n + 1, ir_record([1.0, float(n + 1)]))
    return {"PNG files": CropFiles(root / "png", png), "JPEG files": CropFiles(root / "jpg", jpg),
            "packed shards": PackedCrops(root / "jpg", "faces", jpg), ".rec": read_face_records(root / "train.rec")}


def rate(store, size: int, crop: int, order: np.ndarray) -> float:
    """Samples/s of one worker: load, random crop, flip, uint8 CHW (FaceTrainingSet's work)."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in order:
        img = store.load(int(i), size)
        y, x = rng.integers(0, size - crop + 1, size=2)
        img = img[y:y + crop, x:x + crop]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        to_chw(img)
    return len(order) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    args = ap.parse_args()
    print(f"crops from {len(PHOTOS)} real photos" if PHOTOS else "generated crops (../shared/data not found)")
    print(f"{'size':>5} {'storage':<14} {'bytes/crop':>10} {'samples/s/worker':>17} {'x PNG':>6} "
          f"{'workers for ' + str(GPU_RATE) + '/s':>17}")
    for size, crop in ((112, 112), (144, 128)):
        with tempfile.TemporaryDirectory() as tmp:
            stores = write_stores(Path(tmp), args.images, size)
            sizes = {"PNG files": sum(p.stat().st_size for p in (Path(tmp) / "png").iterdir()),
                     "JPEG files": sum(p.stat().st_size for p in (Path(tmp) / "jpg").glob("*.jpg"))}
            sizes["packed shards"] = sizes[".rec"] = sizes["JPEG files"]
            order = np.random.default_rng(1).permutation(args.images)
            rates = {k: [] for k in stores}
            for _ in range(3):  # interleaved rounds, median
                for name, store in stores.items():
                    rates[name].append(rate(store, size, crop, order))
            base = statistics.median(rates["PNG files"])
            for name in stores:
                r = statistics.median(rates[name])
                print(f"{size:>5} {name:<14} {sizes[name] / args.images / 1024:>8.1f}Ki {r:>17.0f} {r / base:>6.2f} "
                      f"{math.ceil(GPU_RATE / r):>17d}")


if __name__ == "__main__":
    main()
