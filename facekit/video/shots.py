"""Shot-cut detection from the frames themselves.

A cut between frames t-1 and t scores ``hist_tv + pixel_mad`` on ~64x36 thumbnails:
the total-variation distance of 512-bin RGB histograms (in [0, 1]) plus the mean absolute difference of the grey
thumbnails (in [0, 1]). On the real clips in shared/data, cuts score 0.28-0.48 and motion inside a shot at most
0.12, hence the default threshold 0.2.
"""

from __future__ import annotations

import numpy as np


class ShotCutDetector:
    """Stateful: feed frames in order; ``update`` returns a bool per frame, True where a new shot starts."""

    def __init__(self, threshold: float = 0.2) -> None:
        self.threshold = threshold
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def _signature(frame_hwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = frame_hwc.shape[:2]
        thumb = frame_hwc[:: max(1, h // 36), :: max(1, w // 64)].astype(np.int32)
        q = thumb >> 5
        hist = np.bincount((q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).ravel(), minlength=512) / q[..., 0].size
        return hist, thumb.mean(-1) / 255.0

    def score(self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
        if a[1].shape != b[1].shape:
            return float("inf")
        return float(0.5 * np.abs(a[0] - b[0]).sum() + np.abs(a[1] - b[1]).mean())

    def update(self, frames_bhwc: np.ndarray) -> np.ndarray:
        cuts = np.zeros(len(frames_bhwc), dtype=bool)
        for i, frame in enumerate(frames_bhwc):
            sig = self._signature(frame)
            cuts[i] = self._prev is None or self.score(self._prev, sig) > self.threshold
            self._prev = sig
        return cuts
