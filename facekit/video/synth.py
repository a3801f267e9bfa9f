"""Synthetic clips from still photos (slow zoom and pan, hard cuts between photos).

Used to build facekit's embedded sample clip and the test suite's own videos. Writing video needs PyAV
(``pip install av``, part of the ``test`` extra); reading never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from facekit.errors import InputError


def ken_burns_boxes(photo_wh: tuple[int, int], n_frames: int, size_wh: tuple[int, int],
                    zoom: tuple[float, float] = (1.0, 1.2), pan: tuple[float, float] = (0.05, 0.03)) -> np.ndarray:
    """(n_frames, 4) photo regions (x0, y0, x1, y1) that ``ken_burns`` resizes into its frames: a zoom from
    ``zoom[0]`` to ``zoom[1]`` and a pan by ``pan`` (fractions of the photo)."""
    pw, ph = photo_wh
    w, h = size_wh
    aspect = w / h
    base_w, base_h = (pw, pw / aspect) if pw / ph < aspect else (ph * aspect, ph)
    boxes = []
    for t in np.linspace(0.0, 1.0, n_frames):
        z = zoom[0] + (zoom[1] - zoom[0]) * t
        cw, ch = base_w / z, base_h / z
        cx = pw / 2 + pan[0] * pw * (t - 0.5)
        cy = ph / 2 + pan[1] * ph * (t - 0.5)
        x0 = float(np.clip(cx - cw / 2, 0, pw - cw))
        y0 = float(np.clip(cy - ch / 2, 0, ph - ch))
        boxes.append((x0, y0, x0 + cw, y0 + ch))
    return np.array(boxes).reshape(-1, 4)


def ken_burns(photo: Image.Image, n_frames: int, size_wh: tuple[int, int], zoom: tuple[float, float] = (1.0, 1.2),
              pan: tuple[float, float] = (0.05, 0.03)) -> list[np.ndarray]:
    """Frames (H, W, 3) uint8 that zoom from ``zoom[0]`` to ``zoom[1]`` and pan by ``pan`` (fractions of the photo).
    A photo pixel (x, y) lands at ((x + 0.5 - x0) * W / (x1 - x0) - 0.5, likewise y) of a frame whose region is
    (x0, y0, x1, y1) (``ken_burns_boxes``)."""
    photo = photo.convert("RGB")
    return [np.asarray(photo.resize(size_wh, Image.BILINEAR, box=tuple(box)))
            for box in ken_burns_boxes(photo.size, n_frames, size_wh, zoom, pan)]


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0, crf: int = 23,
                timestamps_sec: Sequence[float] | None = None) -> Path:
    """Encode RGB frames as H.264 (yuv420p). ``timestamps_sec`` gives each frame's pts (variable frame rate)."""
    try:
        import av
    except ImportError:
        raise InputError("writing video needs PyAV: pip install av") from None
    from fractions import Fraction

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        if timestamps_sec is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, frame in enumerate(frames):
            if i == 0:
                stream.height, stream.width = frame.shape[:2]
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if timestamps_sec is not None:
                vf.pts = int(round(timestamps_sec[i] * 1000))
                vf.time_base = Fraction(1, 1000)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def photo_clip(photos: Sequence[Image.Image], frames_per_shot: int, size_wh: tuple[int, int]) -> list[np.ndarray]:
    """One zoom/pan shot per photo, hard cuts between them."""
    frames: list[np.ndarray] = []
    for i, photo in enumerate(photos):
        pan = (0.04 * (-1) ** i, 0.02)
        frames += ken_burns(photo, frames_per_shot, size_wh, pan=pan)
    return frames


def voxceleb_layout(clips: Sequence[Path], root: Path, videos: int = 2, utterances: int = 2,
                    max_side: int = 256) -> list[Path]:
    """A VoxCeleb2-layout fixture from talking-head clips: clip i becomes identity ``id{i:05d}``; its frames are
    cut into ``videos x utterances`` consecutive parts written as ``<root>/mp4/id{i:05d}/v{j}/{k:05d}.mp4``
    (shrunk to ``max_side``). Parts of one clip stand in for different videos of the person: the same session,
    so positives are easier than in VoxCeleb2 itself."""
    from facekit.video.decode import VideoStream

    written = []
    for i, clip in enumerate(sorted(clips)):
        stream = VideoStream(clip)
        frames = np.concatenate([f for _, f, _ in stream.batches(64)])
        h, w = frames.shape[1:3]
        scale = min(1.0, max_side / max(h, w))
        size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
        parts = np.array_split(np.arange(len(frames)), videos * utterances)
        for p, idx in enumerate(parts):
            j, k = divmod(p, utterances)
            out = root / "mp4" / f"id{i:05d}" / f"v{j}" / f"{k + 1:05d}.mp4"
            written.append(write_video(out, (np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR))
                                             for f in frames[idx]), fps=stream.info.fps or 25.0))
    return written
