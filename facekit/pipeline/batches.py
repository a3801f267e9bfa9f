"""The batches one video's extraction works on: frames sampled at a rate, then each batch with its shot cuts,
key frames and full detections (what needs no tracker state, so it can run a batch ahead of tracking)."""

from __future__ import annotations

import numpy as np

from facekit.detect.mtcnn import MTCNN
from facekit.pipeline.config import ExtractConfig
from facekit.pipeline.stages import CLOCK
from facekit.video.shots import ShotCutDetector


def key_interval(cfg: ExtractConfig, video_fps: float) -> int:
    """Used frames between full detections: ``detect_every`` counts the video's own frames, so with ``--fps`` the
    detector runs as often in video time (at most on every used frame): at 5 fps of a 25 fps video with
    ``detect_every`` 8, every 2nd used frame (0.4 s), not every 8th (1.6 s, the faces moved too far between)."""
    if cfg.fps is None or not video_fps or video_fps <= cfg.fps:
        return cfg.detect_every
    return max(1, round(cfg.detect_every * cfg.fps / video_fps))


def detected_ahead(batches, cuts: ShotCutDetector, detector: MTCNN, k: int):
    """Each batch with its shot cuts, its key frames (every k-th frame of a shot, counted from the shot's first
    frame) and the full detector's results on them: what needs no tracker state, so it can run a batch ahead."""
    start = 0
    for index, orig, frames, stamps in batches:
        with CLOCK("shot cuts"):
            is_cut = cuts.update(frames)
        key = np.zeros(len(index), dtype=bool)
        for j, f in enumerate(index):
            start = int(f) if is_cut[j] else start
            key[j] = (int(f) - start) % k == 0
        with CLOCK("detection"):
            found = detector.detect(frames[key]) if key.any() else []
        yield index, orig, frames, stamps, is_cut, key, found


def sample_rate(batches, fps: float | None):
    """(used-frame counter, video frame index, frames, timestamps) batches: every frame, or with ``fps`` the
    first frame of each 1/fps interval of video time (timestamps stay the video's own)."""
    used, last = 0, None
    for index, frames, stamps in batches:
        if fps is None:
            keep = np.ones(len(index), bool)
        else:
            slot = np.floor(stamps * fps + 1e-9).astype(np.int64)
            keep = np.r_[slot[:1] != last if last is not None else [True], slot[1:] != slot[:-1]]
            last = slot[-1]
        if keep.any():
            n = int(keep.sum())
            yield np.arange(used, used + n), index[keep], frames[keep], stamps[keep]
            used += n
