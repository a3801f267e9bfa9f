"""Face crops for a feature extractor, and per-image features computed once and cached in Parquet.

Cache: ``<cache_dir>/<model fingerprint>/part-*.parquet`` with columns ``key`` (preparation + image path) and
``embedding``; new features are appended as atomic part files, so an interrupted run keeps what it computed.
``--features FILE`` replaces the model: a Parquet (or .npz) of precomputed ``path`` -> ``embedding``.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from facekit.align import Template, align_faces, get_template
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.progress import progress_bar

Loader = Callable[[str], np.ndarray]  # key -> aligned uint8 (S, S, 3) crop


def read_image(path: str | Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"{path}: image not found") from None
    except Exception as err:
        raise InputError(f"{path}: cannot read image ({type(err).__name__})") from None


BOX_MARGIN = 0.25  # a given face box is searched enlarged by this share of its side on every side
FALLBACKS = ("redetected_in_box", "box_crop", "centre_crop")  # crop kinds that are not the protocol's own face


class FaceCropper:
    """Image -> crop aligned to the model's template, the way the protocol gives the face:

    - ``landmarks``: by given landmarks (insightface's IJB layout);
    - ``box_onet``: MTCNN's O-Net inside a given box (NIST's IJB box) scores above 0.5;
    - ``redetected_in_box``: else the face MTCNN finds inside the box enlarged by ``BOX_MARGIN`` (the most central
      one there), never a face elsewhere in the image (another person in a multi-person frame);
    - ``box_crop``: else the box itself, squared: the protocol's face, unaligned;
    - ``central_face``: no box given (YTF, LFW): the most central confident MTCNN face;
    - ``centre_crop``: no face at all: the image's centre;
    - ``aligned``: the images are crops on the template already.

    ``counts`` holds how many images were cropped each way; ``FALLBACKS`` are the kinds to report. With a
    ``cache`` (``CropCache``), a crop made before for the key set by ``keyed`` (any model on this template) is
    read instead of made again. Safe to call from the loader's threads."""

    def __init__(self, template: str | Template, size: int, detector=None, aligned: bool = False,
                 device: str = "cpu", cache=None) -> None:
        self.template = template if isinstance(template, Template) else get_template(template, size)
        self.size, self.aligned, self.device, self.cache = size, aligned, device, cache
        self.counts: Counter = Counter()
        self._detector = detector
        self._lock = threading.Lock()
        self._key = threading.local()

    def keyed(self, key: str | None) -> None:
        """The cache key of the next crop made in this thread (None: do not cache)."""
        self._key.value = key

    def count(self, kind: str) -> None:
        """One more image cropped as ``kind`` (thread-safe: the loader's threads crop)."""
        with self._lock:
            self.counts[kind] += 1

    @property
    def fallbacks(self) -> int:
        return sum(self.counts[k] for k in FALLBACKS)

    @property
    def detector(self):
        if self._detector is None:
            from facekit.detect.mtcnn import MTCNN

            self._detector = MTCNN(min_face_size=20, device=self.device)
        return self._detector

    def __call__(self, image: np.ndarray, landmarks_5x2: np.ndarray | None = None,
                 box_xyxy: np.ndarray | None = None) -> np.ndarray:
        if self.aligned:
            self.count("aligned")
            return self._resize(image)
        key = getattr(self._key, "value", None) if self.cache is not None else None
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            self.count(hit[1])
            return hit[0]
        crop, kind = self._crop(image, landmarks_5x2, box_xyxy)
        self.count(kind)
        if key is not None:
            self.cache.add(key, crop, kind)
        return crop

    def _crop(self, image: np.ndarray, landmarks_5x2: np.ndarray | None,
              box_xyxy: np.ndarray | None) -> tuple[np.ndarray, str]:
        kind = "landmarks"
        if landmarks_5x2 is None and box_xyxy is not None:
            box = np.asarray(box_xyxy, np.float64)
            d = self.detector.refine(image, box[None])
            kind, landmarks_5x2 = "box_onet", d.landmarks_5x2[0] if d.scores[0] > 0.5 else None
            if landmarks_5x2 is None:
                kind, landmarks_5x2 = "redetected_in_box", self._in_box(image, box)
            if landmarks_5x2 is None:
                return self._resize(_square(image, box)), "box_crop"
        elif landmarks_5x2 is None:
            kind, landmarks_5x2 = "central_face", self._most_central(image)
            if landmarks_5x2 is None:
                h, w = image.shape[:2]
                side = min(h, w) // 2
                y0, x0 = (h - side) // 2, (w - side) // 2
                return self._resize(image[y0:y0 + side, x0:x0 + side]), "centre_crop"
        crop = align_faces([image], np.array([0]), np.asarray(landmarks_5x2, np.float64)[None], self.template)
        return crop[0].permute(1, 2, 0).numpy(), kind

    def _most_central(self, image: np.ndarray) -> np.ndarray | None:
        d = self.detector.detect(image)[0]
        if not len(d):
            return None
        h, w = image.shape[:2]
        centre = (d.boxes_xyxy[:, :2] + d.boxes_xyxy[:, 2:]) / 2
        off = np.linalg.norm((centre - [w / 2, h / 2]) / max(h, w), axis=1)
        return d.landmarks_5x2[int(np.argmax(d.scores - off))]

    def _in_box(self, image: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray | None:
        """The face MTCNN finds in the box enlarged by BOX_MARGIN, nearest its centre; landmarks in image pixels."""
        h, w = image.shape[:2]
        side = box_xyxy[2:] - box_xyxy[:2]
        x0, y0 = np.maximum(box_xyxy[:2] - BOX_MARGIN * side, 0).astype(int)
        x1, y1 = np.minimum(box_xyxy[2:] + BOX_MARGIN * side, [w, h]).astype(int)
        if x1 - x0 < 12 or y1 - y0 < 12:
            return None
        d = self.detector.detect(np.ascontiguousarray(image[y0:y1, x0:x1]))[0]
        if not len(d):
            return None
        centre = (d.boxes_xyxy[:, :2] + d.boxes_xyxy[:, 2:]) / 2 + [x0, y0]
        off = np.linalg.norm((centre - (box_xyxy[:2] + box_xyxy[2:]) / 2) / max(side.max(), 1), axis=1)
        return d.landmarks_5x2[int(np.argmax(d.scores - off))] + [x0, y0]

    def _resize(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] == (self.size, self.size):
            return image
        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((self.size, self.size),
                                                                               Image.BILINEAR))


def _square(image: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
    """The square of the box's longer side around its centre, inside the image."""
    h, w = image.shape[:2]
    c, half = (box_xyxy[:2] + box_xyxy[2:]) / 2, max(box_xyxy[2:] - box_xyxy[:2]) / 2
    x0, y0 = np.clip(c - half, 0, [w - 1, h - 1]).astype(int)
    x1, y1 = np.clip(c + half, [x0 + 1, y0 + 1], [w, h]).astype(int)
    return image[y0:y1, x0:x1]


def crop_report(croppers: list[FaceCropper], computed: int) -> dict:
    """How this run's images were cropped, for report.json: counts by kind, fallbacks by kind and their share.
    Images whose features came from the cache were cropped by an earlier run: ``computed`` says how many were
    cropped here."""
    counts = sum((c.counts for c in croppers), Counter())
    n, fallbacks = sum(counts.values()), {k: counts[k] for k in FALLBACKS if counts[k]}
    return {"images_cropped": n, "by_kind": dict(sorted(counts.items())), "fallbacks": fallbacks,
            "fallback_share": round(sum(fallbacks.values()) / n, 6) if n else 0.0, "features_computed": computed}


class FeatureCache:
    """Features keyed by string in ``<cache_dir>/<fingerprint>/part-*.parquet``. New features are buffered and
    written as one atomic part per ``flush_rows`` (and at ``flush()``), so a large corpus makes few files and an
    interrupted run loses at most one buffer."""

    def __init__(self, cache_dir: str | Path, fingerprint: str, flush_rows: int = 8192) -> None:
        self.folder = Path(cache_dir) / fingerprint
        self.flush_rows = flush_rows
        self.features: dict[str, np.ndarray] = {}
        self._keys: list[str] = []
        self._feats: list[np.ndarray] = []
        for part in sorted(self.folder.glob("part-*.parquet")):
            t = pq.read_table(part)
            for k, e in zip(t.column("key").to_pylist(), t.column("embedding").to_numpy(zero_copy_only=False)):
                self.features[k] = np.asarray(e, np.float32)

    def add(self, keys: Sequence[str], feats: np.ndarray) -> None:
        feats = np.asarray(feats, np.float32)
        self.features.update(zip(keys, feats))
        self._keys += list(keys)
        self._feats += list(feats)
        if len(self._keys) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({"key": self._keys, "embedding": pa.array(self._feats, type=pa.list_(pa.float32()))})
        with atomic_path(self.folder / f"part-{uuid.uuid4().hex[:12]}.parquet") as tmp:
            pq.write_table(table, tmp)
        self._keys, self._feats = [], []


def compute_features(keys: Sequence[str], load: Loader, extractor, cache: FeatureCache | None,
                     batch: int = 64, desc: str = "features", workers: int = 0) -> tuple[np.ndarray, int]:
    """Features of every key (in order), computing only those not cached; returns (features (n, d), computed).
    ``workers`` > 0: ``load`` (reading, detection, alignment) runs in that many threads, in key order, while the
    extractor embeds the previous batch."""
    known = cache.features if cache is not None else {}
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    fresh: dict[str, np.ndarray] = {}
    # the bar counts items as they are loaded (a set for the aggregator: N images and a fusion), not batches
    bar = progress_bar(total=len(todo), desc=desc, unit="item", disable=not (todo and desc), dynamic_ncols=True)
    chunks = [todo[s:s + batch] for s in range(0, len(todo), batch)]
    pool = ThreadPoolExecutor(workers) if workers > 0 else None

    def start(i: int) -> list:  # the threads load one batch ahead of the embedding, never more (bounded memory)
        return [pool.submit(load, k) for k in chunks[i]] if pool and i < len(chunks) else []

    ahead = start(0)
    try:
        for i, chunk in enumerate(chunks):
            current, ahead = ahead, start(i + 1)
            crops = []
            for n, k in enumerate(chunk):
                crops.append(current[n].result() if pool else load(k))
                bar.update(1)
            feats = extractor.embed(np.stack(crops))
            if cache is not None:
                cache.add(chunk, feats)
            fresh.update(zip(chunk, feats))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if cache is not None:
            cache.flush()
    table = {**known, **fresh}
    return np.stack([table[k] for k in keys]).astype(np.float32), len(todo)


def read_feature_file(path: str | Path) -> dict[str, np.ndarray]:
    """Precomputed features: Parquet with ``path`` and ``embedding`` columns, or .npz with ``paths``/``embeddings``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: features file not found")
    try:
        if path.suffix == ".npz":
            z = np.load(path, allow_pickle=False)
            paths, emb = [str(p) for p in z["paths"]], np.asarray(z["embeddings"], np.float32)
        else:
            df = pd.read_parquet(path, columns=["path", "embedding"])
            paths, emb = df["path"].astype(str).tolist(), np.stack(df["embedding"].to_numpy()).astype(np.float32)
    except (KeyError, ValueError) as err:
        raise InputError(f"{path}: expected columns path + embedding (Parquet) or paths + embeddings (.npz): "
                         f"{err}") from None
    except Exception as err:
        raise InputError(f"{path}: cannot read features ({type(err).__name__})") from None
    if len(paths) != len(emb):
        raise InputError(f"{path}: {len(paths)} paths but {len(emb)} embeddings")
    return dict(zip(paths, emb))


def lookup_features(table: dict[str, np.ndarray], keys: Sequence[str], source: str) -> np.ndarray:
    missing = [k for k in keys if k not in table]
    if missing:
        raise InputError(f"{source}: no feature for {len(missing)} image(s), e.g. {missing[0]!r}")
    return np.stack([table[k] for k in keys]).astype(np.float32)
