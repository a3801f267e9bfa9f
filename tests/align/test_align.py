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
    img = np.zeros((1, 320, 320, 3), np.uint8)
    for x, y in marks:
        img[0, int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    crop = align_faces(img, np.array([0]), marks[None], tpl)[0, 0].float()
    for x, y in tpl.as_array():
        xi, yi = int(round(x)), int(round(y))
        assert crop[yi - 1:yi + 2, xi - 1:xi + 2].max() > 100, (x, y)
    assert crop.mean() < 30  # nothing else lit


def test_crop_only_alignment_equals_warping_the_whole_frame():
    # reference: warp_patches over the whole float frames (what the crops must reproduce exactly), for faces
    # inside, across the border and entirely outside the frame, small (pyramid level 0) and large (level 2)
    from facekit.align.similarity import umeyama_similarity as fit
    from facekit.detect.boxes import warp_patches

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 200, 300, 3), dtype=np.uint8)
    tpl = get_template("arcface")
    base = tpl.as_array()
    marks = np.stack([base * 0.6 + [50, 40], base * 4.5 + [-60, -20], base * 1.2 + [250, 150],
                      base * 0.5 + [500, 500]])
    index = np.array([0, 1, 1, 0])
    a = torch.as_tensor(fit(np.broadcast_to(base, (4, 5, 2)), marks), dtype=torch.float32)
    ref = warp_patches(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), torch.as_tensor(index), a,
                       (tpl.size, tpl.size)).round().clamp(0, 255).to(torch.uint8)
    for budget in (1, 30_000, 10**9):  # a face per chunk, a few per chunk, all in one
        got = align_faces(frames, index, marks, tpl, pixel_budget=budget)
        assert torch.equal(got, ref), budget
    assert got[3].max() == 0  # off the frame reads zeros


def test_align_chunks_respect_the_pixel_budget():
    from facekit.align.similarity import _chunks

    regions = np.array([[0, 0, 10, 10], [0, 0, 20, 10], [0, 0, 5, 5], [0, 0, 100, 100], [0, 0, 1, 1]])
    runs = _chunks(regions, 450)
    assert [(s.start, s.stop) for s in runs] == [(0, 2), (2, 3), (3, 4), (4, 5)]
    for s in runs:  # within budget unless a single face is larger than it
        r = regions[s]
        assert s.stop - s.start == 1 or len(r) * (r[:, 3] - r[:, 1]).max() * (r[:, 2] - r[:, 0]).max() <= 450
