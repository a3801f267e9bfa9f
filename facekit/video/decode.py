"""Streaming video decode with decord: a bounded batch of frames at a time, never a whole video in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from facekit.errors import VideoError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif")


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float  # nominal (decord's average) frame rate
    width: int
    height: int
    duration_sec: float
    vfr: bool  # variable frame rate: frame intervals vary by more than ``VFR_TOLERANCE`` of their mean


VFR_TOLERANCE = 0.05


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


class VideoStream:
    """An opened video. ``info`` describes it; ``batches`` yields (frame_index (b,), frames uint8 (b,H,W,3) RGB,
    timestamp_sec (b,)) in order. Decode failures raise ``VideoError`` with a one-line reason."""

    def __init__(self, path: str | Path, num_threads: int = 0) -> None:
        import decord

        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError("file not found")
        if self.path.stat().st_size == 0:
            raise VideoError("zero-byte file")
        try:
            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
            n = len(self._reader)
            if n == 0:
                raise VideoError("no frames")
            first = self._reader[0].shape
            stamps = self._reader.get_frame_timestamp(range(n))[:, 0].astype(np.float64)
            fps = float(self._reader.get_avg_fps())
        except VideoError:
            raise
        except Exception as err:  # decord raises DECORDError / RuntimeError with ffmpeg's text
            raise VideoError(f"cannot open as video: {_short(err)}") from None
        self.timestamps_sec = stamps
        steps = np.diff(stamps)
        vfr = bool(len(steps) > 1 and steps.mean() > 0 and steps.std() / steps.mean() > VFR_TOLERANCE)
        duration = float(stamps[-1] + (steps.mean() if len(steps) else 1.0 / max(fps, 1e-6)))
        self.info = VideoInfo(n, fps, int(first[1]), int(first[0]), duration, vfr)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        n = self.info.num_frames
        for start in range(0, n, batch_size):
            index = np.arange(start, min(n, start + batch_size))
            try:
                frames = self._reader.get_batch(index.tolist()).asnumpy()
            except Exception as err:
                raise VideoError(f"decode failed at frame {start}: {_short(err)}") from None
            yield index, frames, self.timestamps_sec[index]
