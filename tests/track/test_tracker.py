import numpy as np

from facekit.track import FaceTracker, TrackerConfig


def _face(cx, cy, side=40):
    box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    marks = np.array([[cx - 8, cy - 5], [cx + 8, cy - 5], [cx, cy + 2], [cx - 6, cy + 10], [cx + 6, cy + 10]], float)
    return box, marks


def test_two_faces_moving_keep_their_ids():
    tr = FaceTracker()
    ids_a, ids_b = set(), set()
    for f in range(30):
        a, b = _face(50 + 4 * f, 100), _face(300 - 3 * f, 220)
        order = [a, b] if f % 2 else [b, a]  # detection order must not matter
        ids, ended = tr.update(f, np.stack([o[0] for o in order]), np.stack([o[1] for o in order]))
        assert not ended
        ia = 0 if f % 2 else 1
        ids_a.add(ids[ia])
        ids_b.add(ids[1 - ia])
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_velocity_prediction_bridges_missed_detections():
    # 15 px per frame with a 40 px face; frames 10 and 11 have no detection. At frame 12 the face is 45 px from
    # where it was last seen (no overlap at all), but where the constant-velocity model predicts it.
    tr = FaceTracker(TrackerConfig(min_iou=0.3, max_center_dist=0.2))
    seen = set()
    for f in list(range(10)) + [12]:
        box, marks = _face(40 + 15 * f, 100)
        ids, _ = tr.update(f, box[None], marks[None])
        seen.add(ids[0])
    assert len(seen) == 1


def test_gap_ends_a_track_and_end_all():
    tr = FaceTracker(TrackerConfig(max_gap=3))
    box, marks = _face(100, 100)
    first, _ = tr.update(0, box[None], marks[None])
    same, _ = tr.update(3, box[None], marks[None])  # gap of 3 frames: still alive
    assert same == first
    new, ended = tr.update(7, box[None], marks[None])  # 4 frames unseen: ended, new id
    assert ended == first and new != first
    assert tr.end_all() == new and tr.active_ids == []


def test_far_detection_starts_a_new_track():
    tr = FaceTracker()
    a, _ = tr.update(0, *[x[None] for x in _face(100, 100)])
    b, _ = tr.update(1, *[x[None] for x in _face(400, 300)])
    assert a != b


def test_a_shrinking_face_is_predicted_as_a_box_never_inverted():
    # 40 -> 30 px in one frame: -10 px a frame; 5 frames on, the predicted corners would have crossed: the
    # prediction is a 1 px box at the predicted centre instead
    tr = FaceTracker(TrackerConfig(velocity_smoothing=0.0))
    for f, side in ((0, 40), (1, 30)):
        box, marks = _face(100, 100, side)
        tr.update(f, box[None], marks[None])
    _, boxes, _ = tr.predictions(2)
    assert np.allclose(boxes[0], [90, 90, 110, 110])  # still shrinking, still a box
    _, boxes, _ = tr.predictions(6)
    assert np.allclose(boxes[0], [99.5, 99.5, 100.5, 100.5])
