"""Settings of the tracker (plain Python: the command line shows them without importing numpy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackerConfig:
    min_iou: float = 0.3
    max_center_dist: float = 0.5  # in box sides
    landmark_weight: float = 1.0
    max_gap: int = 10  # frames without a detection before a track ends
    velocity_smoothing: float = 0.5
