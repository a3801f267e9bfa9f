"""Issue 24: the right face every time. In the official IJB layout a face is searched only inside NIST's box
(enlarged by BOX_MARGIN); when O-Net rejects the box and nothing is found there, the box itself is cropped and
counted as a fallback: never another person of the frame. Every protocol reports its crops by kind."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import facekit
from facekit.embed.features import FaceCropper, crop_report


@pytest.fixture(scope="module")
def two_people():
    """A 480x240 frame: person B, clear, at the centre; person A at the left (NIST's box around A). Faces from
    the embedded sample clip (two of its people)."""
    video = facekit.sample_video()
    faces = []
    for index in (5, 80):
        frame = facekit.read_frame(video, index)
        d = facekit.detect_faces(frame)
        k = int(np.argmax(d.scores))
        x0, y0, x1, y1 = d.boxes_xyxy[k].astype(int)
        pad = (x1 - x0) // 3
        face = frame[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]
        faces.append(np.asarray(Image.fromarray(face).resize((120, 120), Image.BILINEAR)))
    canvas = np.full((240, 480, 3), 128, np.uint8)
    canvas[60:180, 180:300] = faces[1]  # B, at the centre
    canvas[60:180, 10:130] = faces[0]  # A
    return canvas, np.array([10.0, 60.0, 130.0, 180.0]), np.array([180.0, 60.0, 300.0, 180.0])


def _inside(points: np.ndarray, box: np.ndarray) -> bool:
    return bool(((points >= box[:2]) & (points <= box[2:])).all())


def test_a_rejected_box_is_searched_inside_never_beside(two_people, monkeypatch):
    canvas, box_a, box_b = two_people
    cropper = FaceCropper("arcface", 112)
    assert _inside(cropper._most_central(canvas), box_b)  # the trap: the frame's most central face is B
    real = cropper.detector.refine

    def refine(image, boxes, **kw):  # O-Net scores A's given box 0.3 (the detector's own calls pass through)
        if kw:
            return real(image, boxes, **kw)
        return type("D", (), {"scores": np.array([0.3]), "landmarks_5x2": np.zeros((1, 5, 2))})()

    monkeypatch.setattr(cropper.detector, "refine", refine)
    found = cropper._in_box(canvas, box_a)
    assert found is not None and _inside(found, box_a)  # A, found again inside its own (enlarged) box
    crop = cropper(canvas, box_xyxy=box_a)
    assert crop.shape == (112, 112, 3) and cropper.counts == {"redetected_in_box": 1}
    # A hidden (nothing detectable in its box): the box itself, never B
    dark = canvas.copy()
    dark[60:180, 10:130] = 40
    crop = cropper(dark, box_xyxy=box_a)
    assert cropper.counts["box_crop"] == 1
    assert np.abs(crop.astype(int) - 40).max() <= 1  # the dark box, resized: not a face from elsewhere
    report = crop_report([cropper], computed=2)
    assert report["fallbacks"] == {"redetected_in_box": 1, "box_crop": 1} and report["fallback_share"] == 1.0


def test_no_box_takes_the_central_face_and_counts_a_centre_crop():
    cropper = FaceCropper("arcface", 112)
    cropper(np.full((200, 300, 3), 90, np.uint8))
    assert cropper.counts == {"centre_crop": 1} and cropper.fallbacks == 1
