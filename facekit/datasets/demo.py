"""``facekit build demo``: toy data in the official layout of every dataset facekit reads, made from the embedded
sample clip, so the whole path (extract, curate, train, aggregate, bench) runs on a laptop with nothing
downloaded.

The sample clip (``facekit/assets/sample.mp4``) shows 8 people: one per solo shot and 6 in a group photo. Each
person's frames are found with facekit's own detector and tracker (relaxed filters, every frame detected), and
split in two halves that stand in for two videos of the person. From them:

- ``people/<person>/``: the 6 people of the group shot as an image-folder identity dataset (``build identities``);
  the two solo people are left out, so ``curate overlap`` has something to remove and something to keep;
- ``voxceleb2/mp4/<id>/<video>/<utterance>.mp4``: every person, 2 videos x 2 utterances (``extract-frames``);
- ``ytf/aligned_images_DB`` + ``ytf/splits.txt``: every person, 2 videos, 40 pairs in 10 splits (``bench ytf``);
- ``lfw/lfw`` + ``lfw/pairs.txt``: 4 images per person, 10 folds of 2 + 2 pairs (``bench lfw``);
- ``ijbc/images`` + ``ijbc/protocols``: IJB-C's official CSVs; gallery = one still from the first video (G1 even,
  G2 odd people), probe = frames of the second video as one video media; 1:1 = every gallery x probe template;
- ``ijbc_insightface/``: the same templates in insightface's layout (loose crops + landmarks), with the official
  1:N CSVs beside its ``meta/`` files for the subjects.

The two "videos" of a person are halves of one zoom over one photo, so every protocol here is far easier than
the real one, and the people of the identity data are also in the test data: numbers on the demo data say the
commands run end to end, nothing about a model. ``demo.json`` lists the digests of the protocol files, and every
``facekit bench`` report on them says "demo data: numbers mean nothing" and prints no published numbers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facekit.datasets import layouts
from facekit.datasets.ijb_files import GALLERY_FILES, PROBE_FILES
from facekit.errors import InputError
from facekit.pipeline.config import ExtractConfig, FilterConfig
from facekit.provenance import __version__, file_digest

# every frame detected, no quality filter: the demo wants each person in as many frames as possible
DETECT = ExtractConfig(min_face_size=16, detect_every=1, filters=FilterConfig(
    min_score=0.9, min_face_px=16, min_blur=0.0, max_abs_yaw=10.0, duplicate_threshold=0.0, min_sequence_length=10))


@dataclass
class Person:
    name: str
    frames: np.ndarray  # (n,) frame indices into the clip, increasing
    boxes: np.ndarray  # (n, 4) xyxy, frame px
    group: bool  # shares its shot with other people

    def video(self, v: int) -> np.ndarray:
        """Rows of the first (v = 0) or second (v = 1) half of the person's frames."""
        return np.array_split(np.arange(len(self.frames)), 2)[v]


def find_people(clip: Path, device: str = "cpu") -> tuple[np.ndarray, list[Person]]:
    """The clip's frames (T, H, W, 3) and its people, one per sequence of the relaxed extraction, ordered by
    first frame then left to right."""
    from facekit.manifests.io import read_manifest
    from facekit.pipeline.extract_sequences import extract_sequences
    from facekit.video.decode import VideoStream

    frames = np.concatenate([f for _, f, _ in VideoStream(clip).batches(32)])
    with tempfile.TemporaryDirectory() as tmp:
        extract_sequences([clip], Path(tmp), DETECT, device=device, progress=False)
        faces = read_manifest(Path(tmp), "faces")
    if faces.empty:
        raise InputError(f"{clip}: no faces found, cannot build demo data from it")
    order = faces.groupby("sequence_id").agg(first=("frame_index", "min"), last=("frame_index", "max"),
                                             x=("box_x1", "mean")).sort_values(["first", "x"])
    people = []
    for k, (sid, row) in enumerate(order.iterrows()):
        f = faces[faces["sequence_id"] == sid].sort_values("frame_index")
        overlaps = ((order["first"] <= row["last"]) & (order["last"] >= row["first"])).sum() > 1
        people.append(Person(f"Person_{k}", f["frame_index"].to_numpy(), f[["box_x1", "box_y1", "box_x2", "box_y2"]]
                             .to_numpy(np.float32), bool(overlaps)))
    return frames, people


def loose_crop(frame: np.ndarray, box: np.ndarray, size: int | None, factor: float = 2.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """A square ``factor`` x the box around its centre, at whole-pixel offsets, black outside the frame (as an
    aligner's border: insightface's ``norm_crop`` and facekit's warp fill 0), resized to ``size`` (None: kept at
    the frame's resolution): the crop and its top-left corner in frame px (integers)."""
    from PIL import Image

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = int(np.ceil(factor * max(box[2] - box[0], box[3] - box[1])))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(Image.fromarray(frame), (-x0, -y0))
    if size is not None:
        canvas = canvas.resize((size, size), Image.BILINEAR)
    return np.asarray(canvas), np.array([x0, y0])


MARKER = "demo.json"  # written last: a folder holding it is complete demo data


def protocol_files(root: Path) -> list[Path]:
    """The files that define the demo's benchmarks (the data fingerprints of their reports)."""
    return sorted([root / "ytf" / "splits.txt", root / "lfw" / "pairs.txt", *(root / "ijbc" / "protocols").iterdir(),
                   *(root / "ijbc_insightface" / "meta").iterdir()])


def is_demo_data(files: list[Path]) -> bool:
    """True when every one of a benchmark's protocol files is, byte for byte, a protocol file of demo data built
    by ``build demo`` (found through the ``demo.json`` in a folder above it)."""
    if not files:
        return False
    paths = [Path(f).resolve() for f in files]
    root = next((d for d in paths[0].parents[:4] if (d / MARKER).is_file()), None)
    if root is None or not all(p.is_relative_to(root) for p in paths):
        return False
    try:
        known = json.loads((root / MARKER).read_text()).get("protocol_files", {})
    except (OSError, ValueError):
        return False
    return all(known.get(str(p.relative_to(root))) == file_digest(p) for p in paths)


def _pick(rows: np.ndarray, k: int) -> np.ndarray:
    return rows[np.linspace(0, len(rows) - 1, k).round().astype(int)]


def build_demo(out: Path, clip: Path | None = None, device: str = "cpu") -> dict:
    """Write the demo data under ``out`` (built in a temporary sibling folder, renamed when complete) and return
    its description (also ``out/demo.json``). Refuses an existing ``out``."""
    from facekit.video import sample_video

    out = Path(out)
    if out.exists():
        raise InputError(f"{out}: already exists (remove it to rebuild the demo data)")
    clip = Path(clip) if clip else sample_video()
    start = time.perf_counter()
    frames, people = find_people(clip, device)
    if len(people) < 4:
        raise InputError(f"{clip}: {len(people)} people found, the demo data needs at least 4")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts = _write_all(tmp, frames, people, device)
        info = {"facekit_version": __version__, "source": str(clip), "detection": DETECT.to_dict(),
                "people": {p.name: {"frames": len(p.frames), "first_frame": int(p.frames[0]),
                                    "last_frame": int(p.frames[-1]), "in_people_folder": p.group} for p in people},
                **counts, "seconds": round(time.perf_counter() - start, 1),
                "protocol_files": {str(f.relative_to(tmp)): file_digest(f) for f in protocol_files(tmp)}}
        (tmp / MARKER).write_text(json.dumps(info, indent=2, default=str) + "\n")
        (tmp / "README.md").write_text(__doc__.split("\n\n", 1)[1])
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _write_all(root: Path, frames: np.ndarray, people: list[Person], device: str = "cpu") -> dict:
    def crops(p: Person, rows: np.ndarray, size: int) -> list[np.ndarray]:
        return [loose_crop(frames[p.frames[r]], p.boxes[r], size)[0] for r in rows]

    layouts.write_people(root / "people", {p.name: crops(p, _pick(np.arange(len(p.frames)), 8), 250)
                                           for p in people if p.group})
    utterances = {}
    for i, p in enumerate(people):
        for v in (0, 1):
            for u, rows in enumerate(np.array_split(p.video(v), 2)):
                utterances[(f"id{i:05d}", f"video{v}", f"{u + 1:05d}")] = crops(p, rows, 224)
    layouts.write_voxceleb(root / "voxceleb2", utterances, fps=12.0)

    n = len(people)
    layouts.write_ytf(root / "ytf", {(p.name, v): crops(p, p.video(v), 200) for p in people for v in (0, 1)},
                      [(s + 1, f"{people[(2 * s + j) % n].name}/0", f"{people[(2 * s + j + k) % n].name}/1", k == 0)
                       for s in range(10) for k in (0, 1 + s % (n - 1)) for j in (0, 1)])
    # LFW: images 1, 2 from the first video, 3, 4 from the second
    lfw = {p.name: crops(p, np.concatenate([_pick(p.video(0), 2), _pick(p.video(1), 2)]), 250) for p in people}
    folds = []
    for f in range(10):
        a, b, c = (people[(2 * f + d) % n].name for d in (0, 1, 2 + f % (n - 2)))
        folds.append(([(a, 1, 3), (b, 2, 4)], [(a, 1, b, 3), (b, 2, c, 4)]))
    layouts.write_lfw(root / "lfw", lfw, folds)
    ijb = _write_ijb(root, frames, people, device)
    return {"people_folder": sum(p.group for p in people), "voxceleb_utterances": len(utterances),
            "ytf_pairs": 40, "lfw_pairs": 40, **ijb}


def _write_ijb(root: Path, frames: np.ndarray, people: list[Person], device: str = "cpu") -> dict:
    """IJB-C official (whole frames + boxes) and insightface (loose crops + landmarks + faceness) layouts of one
    set of templates: per person a gallery template (one still from the first video) and a probe template (up
    to 5 frames of the second video, one video media).

    Both layouts hold the same faces: each loose crop is cut at whole-pixel offsets from the frame as stored
    (JPEG), black outside it, kept lossless (PNG), and its landmarks and faceness are what ``bench ijb`` finds in
    the official layout (MTCNN's O-Net in the NIST box on the stored frame). So the two layouts give the same
    aligned crops, and their numbers differ only by insightface's faceness weights. (An earlier demo padded its
    crops grey and took other landmarks: the faces cut by the frame's edge, 5 of 8 people, then scored
    differently in the two layouts: TAR@1e-4 50% vs 100% with the walk-through model.)"""
    from facekit.detect.mtcnn import MTCNN

    onet = MTCNN(device, min_face_size=20)  # as facekit.embed.features.FaceCropper
    images, crops, faces_if = {}, {}, []
    galleries: tuple[list, list] = ([], [])
    probes = []

    def add(name: str, r: int, p: Person, template: int, subject: int, media: int, rows: list) -> None:
        images[name] = frames[p.frames[r]]
        stored = layouts.as_stored(images[name])  # what bench ijb will read back
        x, y, w, h = np.round(np.r_[p.boxes[r][:2], p.boxes[r][2:] - p.boxes[r][:2]])  # NIST's whole pixels
        rows.append((template, subject, name, media, x, y, w, h))
        box = np.array([x, y, x + w, y + h])
        found = onet.refine(stored, box[None])
        crop, corner = loose_crop(stored, box, None)
        crops[f"{len(crops) + 1}.png"] = crop  # lossless: the stored frame's pixels
        faces_if.append((f"{len(crops)}.png", template, media, (found.landmarks_5x2[0] - corner).reshape(-1).tolist(),
                         float(found.scores[0])))

    for k, p in enumerate(people):
        add(f"img/{k}.jpg", _pick(p.video(0), 1)[0], p, 1 + k, k, 1000 + k, galleries[k % 2])
        for i, r in enumerate(_pick(p.video(1), min(5, len(p.video(1))))):
            add(f"frames/{k}_{i}.jpg", r, p, 101 + k, k, 2000 + k, probes)
    gallery_ids = [g[0] for rows in galleries for g in rows]
    probe_ids = sorted({r[0] for r in probes})
    matches = [(g, q) for g in gallery_ids for q in probe_ids]
    layouts.write_ijb_official(root / "ijbc", "IJBC", images, galleries, probes, matches)
    layouts.write_ijb_insightface(root / "ijbc_insightface", "ijbc", crops, faces_if,
                                  [(g, q, int(g % 100 == q % 100)) for g, q in matches])
    for name in (*GALLERY_FILES["IJBC"], PROBE_FILES["IJBC"]):  # subjects for 1:N, beside insightface's files
        shutil.copy(root / "ijbc" / "protocols" / name, root / "ijbc_insightface" / "meta" / name)
    return {"ijb_gallery_templates": len(gallery_ids), "ijb_probe_templates": len(probe_ids),
            "ijb_images": len(images), "ijb_pairs": len(matches)}
