"""IJB-B / IJB-C: official protocol CSVs and the insightface layout; template features; 1:1 and 1:N protocols.

A *media* is a (TEMPLATE_ID, SIGHTING_ID) group (one still, or the frames of one video); a template feature is
the sum of its media's mean image features, L2-normalised, compared by cosine (insightface's IJB evaluation).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from facekit.datasets.ijb_files import REQUIRED
from facekit.datasets.protocol_files import bad_line, read_lines, to_int
from facekit.errors import InputError
from facekit.metrics import l2_normalise


def read_protocol_csv(path: str | Path) -> pd.DataFrame:
    """One official 1:N CSV -> rows (template, subject, filename, media, box x/y/w/h). Strict: a missing column or
    a cell that is not a number is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"{path}:1: missing column(s) {', '.join(missing)} in the header")
        col = {c: header.index(c) for c in REQUIRED}
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not cells or not any(c.strip() for c in cells):
                continue
            if len(cells) < len(header):
                raise bad_line(path, number, f"expected {len(header)} fields, got {len(cells)}")
            try:
                rows.append((int(cells[col["TEMPLATE_ID"]]), int(cells[col["SUBJECT_ID"]]),
                             cells[col["FILENAME"]].strip(), int(cells[col["SIGHTING_ID"]]),
                             *(float(cells[col[c]]) for c in ("FACE_X", "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT"))))
            except ValueError as err:
                raise bad_line(path, number, f"not a number ({err})") from None
    return pd.DataFrame(rows, columns=["template", "subject", "filename", "media", "x", "y", "w", "h"])


def read_matches(path: str | Path) -> np.ndarray:
    """1:1 list (no header, ``enrol,probe`` integers) -> (P, 2) int64. 15.7 M lines parse in seconds."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        comma = _is_csv(path)
        arr = pd.read_csv(path, header=None, sep="," if comma else r"\s+", engine="c" if comma else "python",
                          dtype=np.int64).to_numpy()
    except (ValueError, pd.errors.ParserError):
        _find_bad_pair_line(path)
        raise
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InputError(f"{path}: expected two integer columns (enrol template, probe template)")
    return arr[:, :2]


def _is_csv(path: Path) -> bool:
    with path.open() as fh:
        return "," in fh.readline()


def _find_bad_pair_line(path: Path) -> None:
    for number, line in read_lines(path):
        cols = line.replace(",", " ").split()
        if len(cols) < 2:
            raise bad_line(path, number, "expected two integers (enrol template, probe template)")
        for c in cols[:3]:
            to_int(path, number, c, "template id / label")


@dataclass(frozen=True)
class InsightfaceIJB:
    """The insightface layout: ``meta/<name>_face_tid_mid.txt``, ``_template_pair_label.txt``,
    ``_name_5pts_score.txt``."""

    faces: pd.DataFrame  # filename, template, media, landmarks (10 floats), faceness
    pairs: np.ndarray  # (P, 2) templates
    labels: np.ndarray  # (P,) 0/1


def read_insightface_layout(root: str | Path, name: str = "ijbc") -> InsightfaceIJB:
    meta = Path(root) / "meta"
    tid = meta / f"{name}_face_tid_mid.txt"
    faces = []
    for number, line in read_lines(tid):
        cols = line.split()
        if len(cols) != 3:
            raise bad_line(tid, number, "expected 'image template media'")
        faces.append((cols[0], to_int(tid, number, cols[1], "template"), to_int(tid, number, cols[2], "media")))
    df = pd.DataFrame(faces, columns=["filename", "template", "media"])
    pts = meta / f"{name}_name_5pts_score.txt"
    marks = {}
    for number, line in read_lines(pts):
        cols = line.split()
        if len(cols) != 12:
            raise bad_line(pts, number, "expected 'image x1 y1 ... x5 y5 faceness' (12 fields)")
        try:
            marks[cols[0]] = [float(v) for v in cols[1:]]
        except ValueError:
            raise bad_line(pts, number, "landmarks and faceness must be numbers") from None
    missing = [f for f in df.filename if f not in marks]
    if missing:
        raise InputError(f"{pts}: no landmarks for {len(missing)} image(s), e.g. {missing[0]}")
    df["landmarks"] = [marks[f][:10] for f in df.filename]
    df["faceness"] = [marks[f][10] for f in df.filename]
    pl = meta / f"{name}_template_pair_label.txt"
    try:
        arr = pd.read_csv(pl, header=None, sep=r"\s+", dtype=np.int64).to_numpy()
    except (ValueError, pd.errors.ParserError, FileNotFoundError):
        _find_bad_pair_line(pl)
        raise InputError(f"{pl}: cannot read the template pairs") from None
    if arr.shape[1] != 3:
        raise InputError(f"{pl}: expected 'template template label' lines")
    return InsightfaceIJB(df, arr[:, :2], arr[:, 2])


def template_features(image_feats: np.ndarray, templates: np.ndarray, media: np.ndarray,
                      weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(unique template ids, (T, d) unit features): media = mean of its images (optionally weighted, e.g. by
    faceness), template = sum of its media, L2-normalised."""
    f = np.asarray(image_feats, dtype=np.float32)
    if weights is not None:
        f = f * np.asarray(weights, dtype=np.float32)[:, None]
    templates, media = np.asarray(templates), np.asarray(media)
    keys = np.stack([templates, media], 1)
    uniq_media, media_of_image = np.unique(keys, axis=0, return_inverse=True)
    media_of_image = media_of_image.reshape(-1)
    counts = np.bincount(media_of_image, minlength=len(uniq_media)).astype(np.float32)
    n = len(f)
    to_media = sparse.csr_matrix((1.0 / counts[media_of_image], (media_of_image, np.arange(n))),
                                 shape=(len(uniq_media), n))  # mean of each media's images
    uniq_t, t_of_media = np.unique(uniq_media[:, 0], return_inverse=True)
    t_of_media = t_of_media.reshape(-1)
    to_template = sparse.csr_matrix((np.ones(len(uniq_media), np.float32), (t_of_media, np.arange(len(uniq_media)))),
                                    shape=(len(uniq_t), len(uniq_media)))  # sum of each template's media
    tf = np.asarray(to_template @ (to_media @ f), dtype=np.float32)
    return uniq_t, l2_normalise(tf)


def lookup(ids: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    """Row of each ``wanted`` id in the sorted ``ids``; an unknown id is an error."""
    pos = np.searchsorted(ids, wanted).clip(0, max(len(ids) - 1, 0))
    bad = ids[pos] != wanted if len(ids) else np.ones(len(wanted), bool)
    if bad.any():
        raise InputError(f"{what}: template {int(np.asarray(wanted)[bad][0])} has no images in the protocol")
    return pos
