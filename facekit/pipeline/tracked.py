"""The tracker's O-Net steps between full detections: tracked faces re-found frame by frame (several frames in one
O-Net pass), and faces first seen at a full detection followed backwards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from facekit.detect.mtcnn import MIN_BATCH, MTCNN, Detections
from facekit.pipeline.config import ExtractConfig
from facekit.track.tracker import FaceTracker

REFINE_AGAIN = 0.04  # O-Net again where its first pass moved a face's centre further than this (box sides)


@dataclass
class Observation:
    track_id: int
    frame_index: int
    timestamp_sec: float
    slot: int  # the frame's position in the frames handed to ``_SequenceWriter.add``
    box_xyxy: np.ndarray
    landmarks_5x2: np.ndarray
    score: float
    tracked: bool  # found by O-Net around the tracker's prediction, between full detector runs
    shot_index: int


def tracked_run(tracker: FaceTracker, detector: MTCNN, cfg: ExtractConfig, frames: np.ndarray,
                index: np.ndarray, key: np.ndarray, j: int) -> Iterator[tuple[int, Detections]]:
    """Frame ``j`` and the next ones up to the next key frame, as many as fill one O-Net call's smallest batch
    (``MIN_BATCH`` patches, padded with blanks anyway: a lone tracked face takes 4 frames, 4 faces one frame):
    each live track's face re-found by O-Net around where the tracker, as it stands at the run's start, expects
    it on each frame, in one pass. A face two or more frames past the tracker's state may be further off its
    predicted box than one O-Net step corrects: where O-Net moved a box's centre by more than ``REFINE_AGAIN``
    of its side, O-Net runs again from the box it found. Yields (slot in ``frames``, confident detections) per
    frame, in order; the caller updates the tracker before asking for the next frame, and a track that has ended
    by then (``max_gap``) has no detection there."""
    ids = tracker.active_ids
    most = MIN_BATCH // len(ids) if ids else len(index)
    end = j + 1
    while end < len(index) and not key[end] and end - j < most:
        end += 1
    boxes = np.concatenate([tracker.predictions(int(index[s]))[1] for s in range(j, end)]).reshape(-1, 4)
    slots = np.repeat(np.arange(j, end), len(ids))
    found = detector.refine_many(frames, slots, boxes)
    centre_moved = np.abs(found.boxes_xyxy[:, :2] + found.boxes_xyxy[:, 2:] - boxes[:, :2] - boxes[:, 2:]).max(1) / 2
    again = np.flatnonzero((slots > j) & (centre_moved > REFINE_AGAIN * np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)))
    if len(again):
        second = detector.refine_many(frames, slots[again], found.boxes_xyxy[again])
        for field in ("boxes_xyxy", "scores", "landmarks_5x2"):
            getattr(found, field)[again] = getattr(second, field)
    for r, s in enumerate(range(j, end)):
        f, active = int(index[s]), set(tracker.active_ids)
        live = np.array([t in active and f - tracker.last_frame(t) <= cfg.tracker.max_gap for t in ids], bool)
        rows = np.arange(r * len(ids), (r + 1) * len(ids))[live]
        yield s, confident(found.select(rows), cfg)


def confident(d: Detections, cfg: ExtractConfig) -> Detections:
    return d.select(d.scores >= cfg.thresholds[2])


def backfill(detector: MTCNN, cfg: ExtractConfig, pool: list[np.ndarray], pool_stamps: np.ndarray, first: int,
              lowest: int, born: Observation) -> list[Observation]:
    """Follow a newly found face backwards from frame ``born.frame_index - 1`` down to ``lowest`` with O-Net on
    the box of the frame after; stops at the first frame where O-Net loses it."""
    out: list[Observation] = []
    box = born.box_xyxy
    for f in range(born.frame_index - 1, lowest - 1, -1):
        d = confident(detector.refine(pool[f - first], box[None]), cfg)
        if len(d) == 0:
            break
        box = d.boxes_xyxy[0]
        out.append(Observation(born.track_id, f, float(pool_stamps[f - first]), f - first, box,
                                d.landmarks_5x2[0], float(d.scores[0]), True, born.shot_index))
    return out
