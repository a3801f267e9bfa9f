"""Settings of ``facekit extract-sequences``: one frozen dataclass, saved beside every run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from facekit.errors import InputError
from facekit.track.tracker import TrackerConfig


@dataclass(frozen=True)
class FilterConfig:
    min_score: float = 0.95  # O-Net face probability
    min_face_px: float = 40.0  # shorter side of the detected box
    min_blur: float = 15.0  # Laplacian variance of the aligned grey crop
    max_abs_yaw: float = 0.45  # pose proxy (0 frontal; profile faces go past 0.5)
    duplicate_threshold: float = 0.008  # mean abs grey difference (0..1) of 16x16 thumbnails to the last kept face
    min_sequence_length: int = 5  # kept faces


@dataclass(frozen=True)
class ExtractConfig:
    min_face_size: float = 40.0  # detector pyramid lower bound, px in the original frame
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)  # P/R/O-Net
    detect_max_side: int | None = 1280  # frames are shrunk to this longer side for detection only
    detect_every: int = 4  # full MTCNN on every k-th frame of a shot; O-Net on tracked boxes in between
    batch_frames: int = 16  # decoded frames per batch (bounds memory)
    shot_threshold: float = 0.2  # see facekit.video.shots
    template: str = "arcface"
    crop_size: int = 112
    jpeg_quality: int = 95
    skip_vfr: bool = False
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise InputError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.batch_frames < 1:
            raise InputError(f"batch_frames must be >= 1, got {self.batch_frames}")
        if self.filters.min_sequence_length < 1:
            raise InputError("min_sequence_length must be >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "ExtractConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(ExtractConfig)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown extract setting(s): {', '.join(sorted(unknown))}")
        tracker = TrackerConfig(**d.pop("tracker", {}))
        filters = FilterConfig(**d.pop("filters", {}))
        if "thresholds" in d:
            d["thresholds"] = tuple(d["thresholds"])
        return ExtractConfig(tracker=tracker, filters=filters, **d)
