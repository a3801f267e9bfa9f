import numpy as np
import pytest

from facekit.video.decode import VideoStream
from facekit.video.shots import ShotCutDetector
from tests.conftest import shared


def test_cuts_between_photos_not_inside_zoom(face_photos):
    from facekit.video.synth import photo_clip

    frames = np.stack(photo_clip(face_photos, 15, (320, 180)))
    cuts = ShotCutDetector().update(frames)
    assert np.flatnonzero(cuts).tolist() == [0, 15, 30]  # frame 0 opens the first shot


def test_state_carries_across_batches(face_photos):
    from facekit.video.synth import photo_clip

    frames = np.stack(photo_clip(face_photos[:2], 10, (160, 90)))
    det = ShotCutDetector()
    parts = [det.update(frames[i:i + 7]) for i in range(0, len(frames), 7)]
    assert np.flatnonzero(np.concatenate(parts)).tolist() == [0, 10]


def test_hamilton_clip_cuts_at_20_82_211():
    stream = VideoStream(shared("face_recognition/examples/short_hamilton_clip.mp4"))
    det = ShotCutDetector()
    cuts = np.concatenate([det.update(f) for _, f, _ in stream.batches(64)])
    assert np.flatnonzero(cuts).tolist() == [0, 20, 82, 211]


@pytest.mark.slow
def test_no_cut_in_talking_heads_or_moving_camera():
    for rel in ["video-retalking/examples/face/2.mp4", "facenet-pytorch/examples/video.mp4",
                "LivePortrait/assets/examples/driving/d3.mp4"]:
        stream = VideoStream(shared(rel))
        det = ShotCutDetector()
        cuts = np.concatenate([det.update(f) for _, f, _ in stream.batches(64)])
        assert np.flatnonzero(cuts).tolist() == [0], rel
