"""Multi-face tracking across frames."""

from facekit.track.config import TrackerConfig

__all__ = ["FaceTracker", "TrackerConfig"]


def __getattr__(name: str):
    if name == "FaceTracker":  # imported on use: it needs numpy and scipy
        from facekit.track.tracker import FaceTracker

        return FaceTracker
    raise AttributeError(name)
