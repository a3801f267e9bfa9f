"""Multi-face tracking across frames."""

from facekit.track.tracker import FaceTracker, TrackerConfig

__all__ = ["FaceTracker", "TrackerConfig"]
