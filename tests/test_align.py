import numpy as np
import pytest
import torch

from facekit.align import align_faces, get_template, umeyama_similarity
from facekit.errors import InputError


def test_umeyama_recovers_a_known_similarity():
    # dst = 2 * R(30 deg) @ src + (3, -1), worked out by hand
    src = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 2]], float)
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    a = np.array([[2 * c, -2 * s, 3], [2 * s, 2 * c, -1]])
    dst = src @ a[:, :2].T + a[:, 2]
    np.testing.assert_allclose(umeyama_similarity(src, dst), a, atol=1e-12)
    # (1, 0) -> (2c + 3, 2s - 1) = (4.732, 0)
    np.testing.assert_allclose(dst[1], [2 * c + 3, 0.0], atol=1e-12)


def test_umeyama_never_reflects():
    src = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 0]], float)
    mirrored = src * [-1, 1]
    a = umeyama_similarity(src, mirrored)
    assert np.linalg.det(a[:, :2]) > 0


def test_templates():
    arc = get_template("arcface")
    assert arc.size == 112 and arc.as_array()[2].tolist() == pytest.approx([56.0252, 71.7366])
    seq = get_template("seqface")
    assert seq.size == 144
    # its centre 128 crop holds the ArcFace template scaled to 128
    np.testing.assert_allclose(seq.as_array() - 8, arc.as_array() * 128 / 112)
    np.testing.assert_allclose(get_template("arcface", 224).as_array(), arc.as_array() * 2)
    with pytest.raises(InputError, match="did you mean arcface"):
        get_template("arcfce")


def test_align_puts_landmarks_on_the_template():
    # an image with five bright dots at known landmarks, rotated/scaled w.r.t. the template
    tpl = get_template("arcface")
    c, s = np.cos(0.3), np.sin(0.3)
    marks = tpl.as_array() @ (1.7 * np.array([[c, -s], [s, c]])).T + [90, 60]
    img = torch.zeros(1, 3, 320, 320)
    for x, y in marks:
        img[0, :, int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    crop = align_faces(img, np.array([0]), marks[None], tpl)[0, 0].float()
    for x, y in tpl.as_array():
        xi, yi = int(round(x)), int(round(y))
        assert crop[yi - 1:yi + 2, xi - 1:xi + 2].max() > 100, (x, y)
    assert crop.mean() < 30  # nothing else lit
