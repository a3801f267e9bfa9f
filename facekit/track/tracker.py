"""Detections linked into tracks: constant-velocity prediction, box + landmark cost, Hungarian assignment.

The cost of pairing track t with detection d is ``(1 - IoU(pred_t, d)) + landmark_weight * lm_dist`` where
``lm_dist`` is the mean landmark distance divided by the predicted box side. Pairs with IoU below ``min_iou`` and a
centre distance above ``max_center_dist`` box sides are never linked. A track ends after ``max_gap`` frames
without a detection, and every track ends at a shot cut (``end_all``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from facekit.detect.boxes import iou_matrix
from facekit.track.config import TrackerConfig


@dataclass
class _Track:
    track_id: int
    last_frame: int
    box_xyxy: np.ndarray
    landmarks_5x2: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # d(box)/d(frame)

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        shift = self.velocity * (frame - self.last_frame)
        centre_shift = np.array([(shift[0] + shift[2]) / 2, (shift[1] + shift[3]) / 2])
        box = self.box_xyxy + shift
        if (box[2:] < box[:2]).any():  # shrunk past nothing: a 1 px box at its centre
            centre = (box[:2] + box[2:]) / 2
            box = np.concatenate([centre - 0.5, centre + 0.5])
        return box, self.landmarks_5x2 + centre_shift


class FaceTracker:
    """``update(frame, boxes, landmarks)`` -> (track id per detection, ids of tracks that ended before ``frame``)."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._tracks: dict[int, _Track] = {}
        self._next_id = 0

    @property
    def active_ids(self) -> list[int]:
        return list(self._tracks)

    def last_frame(self, track_id: int) -> int:
        return self._tracks[track_id].last_frame

    def predictions(self, frame: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Where each live track expects its face at ``frame``: (ids, boxes (n,4), landmarks (n,5,2))."""
        ids = [t.track_id for t in self._tracks.values()]
        preds = [t.predict(frame) for t in self._tracks.values()]
        return ids, np.array([p[0] for p in preds]).reshape(-1, 4), np.array([p[1] for p in preds]).reshape(-1, 5, 2)

    def end_all(self) -> list[int]:
        ended = list(self._tracks)
        self._tracks.clear()
        return ended

    def update(self, frame: int, boxes_xyxy: np.ndarray, landmarks_n5x2: np.ndarray) -> tuple[list[int], list[int]]:
        cfg = self.config
        ended = [t.track_id for t in self._tracks.values() if frame - t.last_frame > cfg.max_gap]
        for tid in ended:
            del self._tracks[tid]
        tracks = list(self._tracks.values())
        n_det = len(boxes_xyxy)
        assigned = [-1] * n_det
        if tracks and n_det:
            preds = [t.predict(frame) for t in tracks]
            pred_boxes = np.stack([p[0] for p in preds])
            pred_marks = np.stack([p[1] for p in preds])
            iou = iou_matrix(pred_boxes, boxes_xyxy)
            side = np.maximum(np.sqrt((pred_boxes[:, 2] - pred_boxes[:, 0]) * (pred_boxes[:, 3] - pred_boxes[:, 1])),
                              1.0)
            c_pred = (pred_boxes[:, :2] + pred_boxes[:, 2:]) / 2
            c_det = (boxes_xyxy[:, :2] + boxes_xyxy[:, 2:]) / 2
            centre = np.linalg.norm(c_pred[:, None] - c_det[None], axis=2) / side[:, None]
            lm = np.linalg.norm(pred_marks[:, None] - landmarks_n5x2[None], axis=3).mean(2) / side[:, None]
            cost = (1 - iou) + cfg.landmark_weight * lm
            allowed = (iou >= cfg.min_iou) | (centre <= cfg.max_center_dist)
            rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    self._move(tracks[r], frame, boxes_xyxy[c], landmarks_n5x2[c])
                    assigned[c] = tracks[r].track_id
        for d in range(n_det):
            if assigned[d] < 0:
                track = _Track(self._next_id, frame, np.asarray(boxes_xyxy[d], float),
                               np.asarray(landmarks_n5x2[d], float))
                self._tracks[track.track_id] = track
                assigned[d] = track.track_id
                self._next_id += 1
        return assigned, ended

    def _move(self, track: _Track, frame: int, box: np.ndarray, marks: np.ndarray) -> None:
        dt = max(frame - track.last_frame, 1)
        a = self.config.velocity_smoothing
        track.velocity = a * track.velocity + (1 - a) * (np.asarray(box, float) - track.box_xyxy) / dt
        track.box_xyxy = np.asarray(box, float)
        track.landmarks_5x2 = np.asarray(marks, float)
        track.last_frame = frame
