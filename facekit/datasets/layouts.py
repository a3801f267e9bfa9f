"""Writers of the layouts facekit reads, exactly as the datasets are distributed: image folders per person,
VoxCeleb2 clips, YouTube Faces (``aligned_images_DB`` + ``splits.txt``), LFW (``pairs.txt``), IJB-B/C official
protocol CSVs and insightface's IJB layout. They make fixtures and the demo data (``facekit build demo``) from
any faces; the readers in ``facekit.bench`` / ``facekit.datasets`` are what they are checked against.

Images are RGB uint8 arrays (H, W, 3).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from facekit.datasets.ijb_files import GALLERY_FILES, MATCH_FILES, PROBE_FILES, REQUIRED

# one IJB protocol row: template, subject, filename, media (sighting), box x, y, width, height
IJBRow = tuple[int, int, str, int, float, float, float, float]


JPEG_QUALITY = 95


def save_image(path: Path, image: np.ndarray, quality: int = JPEG_QUALITY) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, quality=quality)
    return path


def as_stored(image: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """The pixels a reader gets back from ``save_image`` of ``image`` as a .jpg."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def write_people(root: Path, people: Mapping[str, Sequence[np.ndarray]]) -> Path:
    """``<root>/<person>/<k>.jpg``: the folder layout of ``facekit build identities``."""
    for person, images in people.items():
        for k, image in enumerate(images):
            save_image(root / person / f"{k:04d}.jpg", image)
    return root


def write_voxceleb(root: Path, utterances: Mapping[tuple[str, str, str], Sequence[np.ndarray]],
                   fps: float = 25.0) -> Path:
    """``<root>/mp4/<identity>/<video>/<utterance>.mp4`` (H.264) from ``(identity, video, utterance) -> frames``."""
    from facekit.video.synth import write_video

    for (identity, video, utt), frames in utterances.items():
        write_video(root / "mp4" / identity / video / f"{utt}.mp4", frames, fps=fps)
    return root


def write_ytf(root: Path, videos: Mapping[tuple[str, int], Sequence[np.ndarray]],
              pairs: Sequence[tuple[int, str, str, bool]]) -> tuple[Path, Path]:
    """``<root>/aligned_images_DB/<person>/<video>/aligned_detect_<video>.<k>.jpg`` from ``(person, video) ->
    frames`` and ``<root>/splits.txt`` from ``(split 1..10, "Person/video", "Person/video", same)`` pairs.
    Returns (images root, splits file)."""
    db = root / "aligned_images_DB"
    for (person, video), frames in videos.items():
        for k, frame in enumerate(frames):
            save_image(db / person / str(video) / f"aligned_detect_{video}.{k}.jpg", frame)
    lines = ["split number, pair number in split, first name, second name, is same:"]
    counter: dict[int, int] = {}
    for split, a, b, same in pairs:
        counter[split] = counter.get(split, 0) + 1
        lines.append(f"{split}, {counter[split]}, {a}, {b}, {int(same)}")
    splits = root / "splits.txt"
    splits.write_text("\n".join(lines) + "\n")
    return db, splits


def write_lfw(root: Path, people: Mapping[str, Sequence[np.ndarray]],
              folds: Sequence[tuple[Sequence[tuple[str, int, int]], Sequence[tuple[str, int, str, int]]]]
              ) -> tuple[Path, Path]:
    """``<root>/lfw/<name>/<name>_<n>.jpg`` (n from 1) and ``<root>/pairs.txt`` with one (matched, mismatched)
    list per fold, every fold the same length: matched ``(name, n1, n2)``, mismatched ``(name1, n1, name2, n2)``.
    Returns (images root, pairs file)."""
    lfw = root / "lfw"
    for name, images in people.items():
        for n, image in enumerate(images, start=1):
            save_image(lfw / name / f"{name}_{n:04d}.jpg", image)
    half = len(folds[0][0])
    if any(len(m) != half or len(u) != half for m, u in folds):
        raise ValueError("every LFW fold needs the same number of matched and mismatched pairs")
    lines = [f"{len(folds)} {half}"]
    for matched, mismatched in folds:
        lines += [f"{n}\t{i}\t{j}" for n, i, j in matched]
        lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in mismatched]
    pairs = root / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return lfw, pairs


def _protocol_csv(path: Path, rows: Sequence[IJBRow]) -> None:
    body = "".join(f"{t},{s},{f},{m},{x:.0f},{y:.0f},{w:.0f},{h:.0f}\n" for t, s, f, m, x, y, w, h in rows)
    path.write_text(",".join(REQUIRED) + "\n" + body)


def write_ijb_official(root: Path, dataset: str, images: Mapping[str, np.ndarray],
                       galleries: Sequence[Sequence[IJBRow]],
                       probes: Sequence[IJBRow], matches: Sequence[tuple[int, int]]) -> tuple[Path, Path]:
    """IJB-B (``IJBB``) or IJB-C (``IJBC``) as NIST distributes it: ``<root>/images/<filename>`` (whole stills and
    video frames; faces are given by the rows' boxes) and ``<root>/protocols/`` with the two 1:N gallery CSVs,
    the mixed probe CSV and the 1:1 ``enrol,probe`` list. Returns (images root, protocols folder)."""
    for name, image in images.items():
        save_image(root / "images" / name, image)
    proto = root / "protocols"
    proto.mkdir(parents=True, exist_ok=True)
    for name, rows in zip(GALLERY_FILES[dataset], galleries):
        _protocol_csv(proto / name, rows)
    _protocol_csv(proto / PROBE_FILES[dataset], probes)
    (proto / MATCH_FILES[dataset]).write_text("".join(f"{a},{b}\n" for a, b in matches))
    return root / "images", proto


def write_ijb_insightface(root: Path, name: str, crops: Mapping[str, np.ndarray],
                          faces: Sequence[tuple[str, int, int, Sequence[float], float]],
                          pairs: Sequence[tuple[int, int, int]]) -> Path:
    """insightface's IJB layout: ``<root>/loose_crop/<image>`` and ``<root>/meta/<name>_face_tid_mid.txt`` (image
    template media), ``_name_5pts_score.txt`` (image, 5 landmarks in crop pixels, faceness) and
    ``_template_pair_label.txt`` (template template label). Returns ``root``."""
    for image_name, crop in crops.items():
        save_image(root / "loose_crop" / image_name, crop)
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / f"{name}_face_tid_mid.txt").write_text("".join(f"{f} {t} {m}\n" for f, t, m, _, _ in faces))
    (meta / f"{name}_name_5pts_score.txt").write_text(
        "".join(f"{f} " + " ".join(f"{v:.3f}" for v in marks) + f" {score:.3f}\n" for f, _, _, marks, score in faces))
    (meta / f"{name}_template_pair_label.txt").write_text("".join(f"{a} {b} {y}\n" for a, b, y in pairs))
    return root
