"""Re-alignment between templates (facekit.align.warp): where landmarks land, checked against a similarity fitted
here by plain least squares (not facekit's Umeyama), and its use as the aggregator's frozen F."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from facekit.align import Template, get_template
from facekit.align.warp import template_warp, warp_crops
from facekit.models import build_backbone
from facekit.models.checkpoint import save_backbone
from facekit.train.frozen_features import FrozenFeatures


def _blobs(t: Template, sigma: float = 1.5) -> torch.Tensor:
    ys, xs = np.mgrid[0:t.size, 0:t.size].astype(float)
    img = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)) for x, y in t.as_array())
    return torch.tensor(img, dtype=torch.float32)[None, None].repeat(1, 3, 1, 1)


def _centroids(img: np.ndarray, near_5x2: np.ndarray, r: float = 5.0) -> np.ndarray:
    ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(float)
    out = []
    for x, y in near_5x2:
        w = (((xs - x) ** 2 + (ys - y) ** 2) < r * r) * img
        out.append([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
    return np.array(out)


def _lstsq_similarity(src_5x2: np.ndarray, dst_5x2: np.ndarray) -> np.ndarray:
    """dst ~ [[a, -b], [b, a]] src + t by ordinary least squares: returns the map as (2, 3)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src_5x2, dst_5x2):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


@pytest.mark.parametrize("src,dst", [(("arcface", 112), ("dlib", 150)), (("dlib", 150), ("arcface", 112)),
                                     (("arcface", 256), ("dlib", 150)), (("seqface", 144), ("arcface", 112))])
def test_landmarks_land_where_the_fitted_similarity_sends_them(src, dst):
    """The templates differ by more than a similarity (arcface vs dlib: up to 3.5 px), so a landmark of ``src``
    lands where the inverse of the best similarity from ``dst``'s points to ``src``'s sends it (fitted output ->
    input, as ``align_faces`` fits template -> image); the shrinking cases go through the antialiased pre-shrink."""
    s, d = get_template(*src), get_template(*dst)
    fit = _lstsq_similarity(d.as_array(), s.as_array())
    want = (s.as_array() - fit[:, 2]) @ np.linalg.inv(fit[:, :2]).T
    out = template_warp(_blobs(s, sigma=1.5 * s.size / 112), s, d)[0, 0].numpy()
    assert out.shape == (d.size, d.size)
    assert np.abs(_centroids(out, want) - want).max() < 0.25


def test_a_change_of_size_is_a_resize():
    s, d = get_template("dlib", 160), get_template("dlib", 150)
    x = _blobs(s)
    got = template_warp(x, s, d)
    want = torch.nn.functional.interpolate(x, size=(150, 150), mode="bilinear", antialias=True, align_corners=False)
    assert torch.equal(got, want)
    assert template_warp(x, s, s) is x


def test_differentiable_and_checks_its_input_size():
    s, d = get_template("arcface", 112), get_template("dlib", 150)
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    template_warp(x, s, d).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="112 px"):
        template_warp(torch.rand(1, 3, 100, 100), s, d)


def test_warp_crops_uint8_round_trip_keeps_the_face_centre():
    s, d = get_template("arcface", 112), get_template("dlib", 150)
    rng = np.random.default_rng(0)
    smooth = torch.nn.functional.interpolate(torch.tensor(rng.uniform(0, 255, (1, 3, 14, 14))), size=(112, 112),
                                             mode="bilinear", align_corners=False)
    crops = smooth.round().byte().permute(0, 2, 3, 1).numpy()
    there = warp_crops(crops, s, d)
    back = warp_crops(there, d, s)
    assert there.dtype == np.uint8 and there.shape == (1, 150, 150, 3) and back.shape == crops.shape
    # the eyes-to-mouth region is inside both crops: a round trip changes it only by resampling
    assert np.abs(back[0, 40:95, 30:82].astype(int) - crops[0, 40:95, 30:82]).mean() < 3.0


def test_frozen_features_realign_the_aggregators_template_to_fs():
    """F (a facekit backbone on the 'dlib' template at 32 px) fed 64 px arcface faces: the features are F's on
    the faces re-aligned to its template, not on a plain resize."""
    torch.manual_seed(0)
    net = build_backbone("sphereface20", num_features=8, input_size=32, widths=(4, 4, 8, 8))
    with tempfile.TemporaryDirectory() as tmp:
        save_backbone(Path(tmp) / "f.pt", "sphereface20", {"num_features": 8, "input_size": 32,
                                                         "widths": [4, 4, 8, 8]}, net, "dlib", 32, 127.5, 128.0,
                      False)
        arc64 = get_template("arcface", 64)
        feats = FrozenFeatures(f"facekit:{Path(tmp) / 'f.pt'}", torch.device("cpu"), arc64)
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            got = feats(x)
            realigned = feats.extractor.forward(template_warp(x, arc64, get_template("dlib", 32)))
            resized = feats.extractor.forward(torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear",
                                                                              antialias=True))
        assert torch.allclose(got, realigned) and not torch.allclose(got, resized, atol=1e-3)
