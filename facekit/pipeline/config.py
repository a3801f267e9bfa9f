"""Settings of ``facekit extract-sequences``: one frozen dataclass, saved beside every run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from facekit.errors import InputError
from facekit.track.config import TrackerConfig


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
    detect_every: int = 8  # full MTCNN on every k-th frame of a shot; O-Net on tracked boxes in between
    fps: float | None = None  # detect and track at this many frames per second of video time (None: every frame)
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
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"fps must be > 0 (or none for every frame), got {self.fps}")
        if self.batch_frames < 1:
            raise InputError(f"batch_frames must be >= 1, got {self.batch_frames}")
        if self.filters.min_sequence_length < 1:
            raise InputError("min_sequence_length must be >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict, where: str = "extract") -> "ExtractConfig":
        """Settings (the ``extract:`` mapping of a recipe) -> config; an unknown key or a wrong type at any depth is
        a one-line error naming ``where`` and the key path, with the known keys."""
        from facekit.recipes import build

        return build(ExtractConfig, d, where)


# One line of help per setting, written as comments into recipes/extract_default.yaml by default_recipe_text().
HELP = {
    "min_face_size": "detector pyramid lower bound, px in the original frame",
    "thresholds": "P-Net, R-Net, O-Net",
    "fps": "detect and track at this many frames per second of video time; null: every frame",
    "detect_max_side": "frames shrunk (integer factor) for detection only; null: never",
    "detect_every": "full MTCNN every k-th video frame of a shot (fps: as often in time); O-Net tracks between",
    "batch_frames": "decoded frames per batch (bounds memory)",
    "shot_threshold": "shot-cut score threshold (facekit.video.shots)",
    "template": "arcface (112), seqface (144, SeqFace training crops) or dlib (150)",
    "crop_size": "aligned crop side, px",
    "jpeg_quality": "crops are JPEG files",
    "skip_vfr": "record variable-frame-rate videos as skipped instead of decoding them",
    "min_iou": "a detection joins a track at this IoU or more",
    "max_center_dist": "or with its centre this close, in box sides",
    "landmark_weight": "weight of the landmark distance in the match cost",
    "max_gap": "frames without a detection before a track ends",
    "velocity_smoothing": "of the track's box motion (0: none)",
    "min_score": "O-Net face probability",
    "min_face_px": "shorter side of the detected box",
    "min_blur": "Laplacian variance of the aligned grey crop",
    "max_abs_yaw": "pose proxy (0 frontal; profile faces go past 0.5)",
    "duplicate_threshold": "mean abs grey difference (0..1) of 16x16 thumbnails to the last kept face",
    "min_sequence_length": "kept faces",
}


def default_recipe_text() -> str:
    """recipes/extract_default.yaml: every setting at its default, from this module (a test keeps the file equal)."""
    import json

    def line(indent: int, key: str, v) -> str:
        text = f"{' ' * indent}{key}: {json.dumps(list(v) if isinstance(v, tuple) else v)}"
        return f"{text:30s} # {HELP[key]}" if key in HELP else text

    def block(indent: int, d: dict) -> list[str]:
        out = []
        for k, v in d.items():
            out += [f"{' ' * indent}{k}:", *block(indent + 2, v)] if isinstance(v, dict) else [line(indent, k, v)]
        return out

    lines = ["# facekit extract-sequences settings (every key optional; command-line flags override what they name).",
             "# The defaults, generated by `python -m facekit.pipeline.config` "
             "(checked by tests/pipeline/test_extract.py).",
             "# Use:  facekit extract-sequences VIDEOS -c recipes/extract_default.yaml", "extract:"]
    return "\n".join(lines + block(2, ExtractConfig().to_dict())) + "\n"


if __name__ == "__main__":
    print(default_recipe_text(), end="")
