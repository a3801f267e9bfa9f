"""Video probing with decord and bounded streaming decode with PyAV: a batch of frames at a time.

decord opens and probes the file (frame count, per-frame timestamps, size; it fails early and clearly on broken
files), then is closed. Sequential frames come from PyAV because decord's reader keeps decoding ahead in a
background thread while the caller is busy, without bound (dmlc/decord#157, #304): on a 60 s clip it held the
whole decoded video, ~1 GB at 640x360 (measured with ``benchmarks/extract_speed.py --memory``). PyAV decodes only
what is asked for; its frames are bit-identical to decord's (both are FFmpeg).
"""

from __future__ import annotations

import contextlib
import os
import sys
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


@contextlib.contextmanager
def native_stderr_silenced():
    """Route file descriptor 2 to /dev/null while the block runs: decord's and FFmpeg's C++ loggers write lines
    such as ``ERROR opening ...`` straight to it. Their text also reaches the exception decord raises, which is
    where facekit takes a failed video's reason from."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


# leading bytes of the containers FFmpeg reads (offset, bytes, name)
_SIGNATURES = ((4, b"ftyp", "MP4/MOV"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (0, b"RIFF", "AVI"),
               (0, b"GIF8", "GIF"), (0, b"FLV", "FLV"), (0, b"\x00\x00\x01\xba", "MPEG-PS"),
               (0, b"\x00\x00\x01\xb3", "MPEG video"), (0, b"\x30\x26\xb2\x75", "ASF/WMV"), (0, b"\x47", "MPEG-TS"),
               (4, b"moov", "MP4/MOV"), (4, b"mdat", "MP4/MOV"), (4, b"free", "MP4/MOV"), (4, b"wide", "MP4/MOV"))


def unreadable_reason(path: Path, decoder_error: Exception) -> str:
    """Why ``path`` is not a readable video, in words: what the file holds by its first bytes (text, an image, an
    unknown format) or, for a known container the decoder refused, that it is damaged or truncated."""
    head, size = b"", 0
    if path.is_file():
        with path.open("rb") as fh:  # a damaged video can be gigabytes: its first bytes say what it is
            head = fh.read(512)
        size = path.stat().st_size
    for offset, magic, name in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            detail = _short(decoder_error).replace(str(path), "").replace("Error reading ...", "").strip(" :.")
            return f"damaged or truncated {name} file ({size} bytes){': ' + detail if detail else ''}"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff":
        kind = "PNG" if head[:1] == b"\x89" else "JPEG"
        return f"not a video: an image file ({kind}) named {path.suffix}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"not a video: a text file ({size} bytes, starts {text.strip()[:40]!r})"
    return f"not a video: no known container signature (first bytes {head[:8].hex(' ')})"


def _probe_with_pyav(path: Path, decord_error: Exception) -> tuple[np.ndarray, float, tuple[int, int, int]]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stamps, first = [], None
            for frame in container.decode(stream):
                if first is None:
                    first = (frame.height, frame.width, 3)
                t = frame.time if frame.time is not None else len(stamps) / float(stream.average_rate or 25)
                stamps.append(t)
            fps = float(stream.average_rate) if stream.average_rate else 0.0
    except Exception:
        raise VideoError(unreadable_reason(path, decord_error)) from None
    if not stamps:
        raise VideoError("no frames")
    stamps = np.asarray(stamps, np.float64) - stamps[0]
    if not fps and len(stamps) > 1:
        fps = (len(stamps) - 1) / max(stamps[-1], 1e-6)
    return stamps, fps, first


class VideoStream:
    """An opened video. ``info`` describes it; ``batches`` yields (frame_index (b,), frames uint8 (b,H,W,3) RGB,
    timestamp_sec (b,)) in order. Decode failures raise ``VideoError`` with a one-line reason."""

    def __init__(self, path: str | Path, num_threads: int = 0) -> None:
        import decord

        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError("file not found")
        if self.path.stat().st_size == 0:
            raise VideoError("empty file (0 bytes)")
        try:
            with native_stderr_silenced():
                reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
                n = len(reader)
                if n == 0:
                    raise VideoError("no frames")
                first = reader[0].shape
                stamps = reader.get_frame_timestamp(range(n))[:, 0].astype(np.float64)
                fps = float(reader.get_avg_fps())
                del reader  # stops decord's read-ahead thread (see the module docstring)
        except VideoError:
            raise
        except Exception as err:  # decord raises DECORDError / RuntimeError with ffmpeg's text
            # decord refuses some files whose container metadata is broken (e.g. GIFs without a duration);
            # PyAV can still decode them: count the frames and take their timestamps from a full pass
            stamps, fps, first = _probe_with_pyav(self.path, err)
            n = len(stamps)
        self.timestamps_sec = stamps
        steps = np.diff(stamps)
        vfr = bool(len(steps) > 1 and steps.mean() > 0 and steps.std() / steps.mean() > VFR_TOLERANCE)
        duration = float(stamps[-1] + (steps.mean() if len(steps) else 1.0 / max(fps, 1e-6)))
        self.info = VideoInfo(n, fps, int(first[1]), int(first[0]), duration, vfr)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """At most ``batch_size`` decoded frames are alive at a time (plus FFmpeg's few reference frames)."""
        import av

        n = self.info.num_frames
        buf: list[np.ndarray] = []
        start = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    if start + len(buf) >= n:
                        break  # the probe's frame count is the contract; PyAV may see a trailing extra frame
                    buf.append(frame.to_ndarray(format="rgb24"))
                    if len(buf) == batch_size:
                        yield self._batch(start, buf)
                        start, buf = start + len(buf), []
        except Exception as err:  # av.error.FFmpegError and friends, with FFmpeg's text
            raise VideoError(f"decode failed at frame {start + len(buf)}: {_short(err)}") from None
        if buf:
            yield self._batch(start, buf)

    def _batch(self, start: int, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = np.arange(start, start + len(frames))
        return index, np.stack(frames), self.timestamps_sec[index]
