"""YouTube Faces: the official ``splits.txt`` and ``aligned_images_DB`` layout, the DAN protocol (aggregation
paper, section 4.2) and the SeqFace protocol. Pure functions; features come from ``facekit.embed.features``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facekit.datasets.protocol_files import bad_line, read_lines, to_int
from facekit.errors import InputError
from facekit.metrics import l2_normalise

SPLITS = 10
PAIRS_PER_SPLIT = 500


@dataclass(frozen=True)
class YTFPairs:
    split: np.ndarray  # (P,) 1..10
    video_a: list[str]  # "Person/videoNo"
    video_b: list[str]
    same: np.ndarray  # (P,) bool

    @property
    def videos(self) -> list[str]:
        return sorted(set(self.video_a) | set(self.video_b))


def read_splits(path: str | Path, expect_full: bool = True) -> YTFPairs:
    """Parse ``splits.txt``: optional header, then ``split, pair, Person/video, Person/video, same`` lines."""
    split, a, b, same = [], [], [], []
    for number, line in read_lines(path):
        if line.lower().startswith("split number"):
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) != 5:
            raise bad_line(path, number, f"expected 5 comma-separated fields, got {len(cols)}")
        s = to_int(path, number, cols[0], "split number")
        to_int(path, number, cols[1], "pair number")
        same_flag = to_int(path, number, cols[4], "is same")
        if not 1 <= s <= SPLITS or same_flag not in (0, 1):
            raise bad_line(path, number, f"split must be 1..{SPLITS} and 'is same' 0 or 1")
        for name in cols[2:4]:
            if not re.fullmatch(r"[^/\s]+/\d+", name):
                raise bad_line(path, number, f"video name must be Person/videoNo, got {name!r}")
        split.append(s), a.append(cols[2]), b.append(cols[3]), same.append(bool(same_flag))
    if not split:
        raise InputError(f"{path}: no pairs")
    if expect_full and len(split) != SPLITS * PAIRS_PER_SPLIT:
        raise InputError(f"{path}: expected {SPLITS * PAIRS_PER_SPLIT} pairs, found {len(split)} "
                         "(pass --subset for fixtures or the demo data)")
    return YTFPairs(np.array(split), a, b, np.array(same))


def _frame_number(p: Path) -> int:
    m = re.search(r"\.(\d+)\.[A-Za-z]+$", p.name)
    return int(m.group(1)) if m else -1


def video_frames(root: str | Path, video: str) -> list[Path]:
    """Frames of ``Person/videoNo`` under ``aligned_images_DB`` (or ``frame_images_DB``), in frame order."""
    folder = Path(root) / video
    if not folder.is_dir():
        raise InputError(f"{folder}: video folder not found (is {root} the aligned_images_DB folder?)")
    frames = sorted((p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                    key=lambda p: (_frame_number(p), p.name))
    if not frames:
        raise InputError(f"{folder}: no frames")
    return frames


def dan_sample(num_frames: int, n: int, n_avg: int) -> np.ndarray:
    """DAN protocol: ``n * n_avg`` evenly spaced frame indices, as (n_avg, n) groups of consecutive samples.
    A video shorter than that repeats frames (rounding), never reads past its end."""
    if n < 1 or n_avg < 1:
        raise InputError(f"N and n_avg must be >= 1, got N={n}, n_avg={n_avg}")
    idx = np.round(np.linspace(0, num_frames - 1, n * n_avg)).astype(np.int64)
    return idx.reshape(n_avg, n)


def dan_video_feature(group_feats: np.ndarray) -> np.ndarray:
    """(n_avg, d) features, one per group (an aggregated face's feature, or the mean of the group's frame
    features for the "avg" baseline) -> their mean, L2-normalised (compared by Euclidean distance)."""
    return l2_normalise(np.asarray(group_feats).mean(0))


def avg_group_features(frame_feats: np.ndarray, n: int, n_avg: int) -> np.ndarray:
    """(n_avg * n, d) frame features in group order -> (n_avg, d): the "avg" method's group features."""
    return np.asarray(frame_feats).reshape(n_avg, n, -1).mean(1)


def seqface_video_feature(frame_feats: np.ndarray) -> np.ndarray:
    """SeqFace protocol: normalise every frame feature, sum, normalise (compared by cosine)."""
    return l2_normalise(l2_normalise(frame_feats).sum(0))
