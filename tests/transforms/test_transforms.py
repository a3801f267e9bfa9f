"""Motion blur (FAN section 4.1 / Table 4) and the aggregator's photometric augmentation, against kernels and
images worked out by hand."""

import numpy as np
import pytest
import torch

from facekit.transforms.blur import motion_blur, motion_blur_kernel
from facekit.transforms.photometric import augment_face


def test_horizontal_kernel_of_odd_length_is_a_box():
    k = motion_blur_kernel(5, 0.0)
    expected = torch.zeros(5, 5)
    expected[2] = 0.2  # 5 samples on the centre row, 1/5 each
    assert torch.allclose(k, expected, atol=1e-7)


def test_even_length_is_centred_not_shifted():
    # length 4 at 0 deg: samples at -1.5, -0.5, 0.5, 1.5 around the centre of a 5-wide kernel, 1/4 each, each split
    # half-half between two pixels -> [1/8, 1/4, 1/4, 1/4, 1/8] on the centre row
    k = motion_blur_kernel(4, 0.0)
    assert k.shape == (5, 5)
    assert torch.allclose(k[2], torch.tensor([0.125, 0.25, 0.25, 0.25, 0.125]), atol=1e-7)
    assert float(k.sum() - k[2].sum()) == pytest.approx(0.0, abs=1e-7)
    # an impulse keeps its centre of mass exactly: no half-pixel shift, for even and odd lengths and any angle
    img = torch.zeros(1, 1, 21, 21)
    img[0, 0, 10, 10] = 1.0
    ys, xs = torch.meshgrid(torch.arange(21.0), torch.arange(21.0), indexing="ij")
    for size in (2, 4, 7, 8, 17):
        for angle in (0.0, 30.0, 90.0, 135.0):
            out = motion_blur(img, size, angle)[0, 0]
            assert float(out.sum()) == pytest.approx(1.0, abs=1e-6)  # energy preserved
            assert float((out * xs).sum()) == pytest.approx(10.0, abs=1e-5)
            assert float((out * ys).sum()) == pytest.approx(10.0, abs=1e-5)


def test_direction_and_length():
    img = torch.zeros(1, 1, 31, 31)
    img[0, 0, 15, 15] = 1.0
    ys, xs = torch.meshgrid(torch.arange(31.0), torch.arange(31.0), indexing="ij")
    for angle, (dx, dy) in ((0.0, (1, 0)), (90.0, (0, -1)), (45.0, (2 ** -0.5, -(2 ** -0.5)))):
        out = motion_blur(img, 9, angle)[0, 0]
        # spread along the direction: the second moment along (dx, dy) is that of 9 unit-spaced samples,
        # sum_j (j - 4)^2 / 9 = 60 / 9, plus the bilinear splat's own spread (0 on axis-aligned integer samples)
        along = (xs - 15) * dx + (ys - 15) * dy
        across = -(xs - 15) * dy + (ys - 15) * dx
        var_along, var_across = float((out * along ** 2).sum()), float((out * across ** 2).sum())
        assert var_along == pytest.approx(60 / 9, rel=0.1)
        assert var_across < 0.35
    # 0 deg: exactly one row, nine pixels
    out = motion_blur(img, 9, 0.0)[0, 0]
    assert torch.count_nonzero(out) == 9 and torch.count_nonzero(out[15]) == 9


def test_constant_image_unchanged_and_uint8_round_trip():
    img = torch.full((2, 3, 16, 16), 100, dtype=torch.uint8)
    out = motion_blur(img, 7, 33.0)
    assert out.dtype == torch.uint8 and torch.equal(out, img)
    assert motion_blur(img, 1, 10.0) is img  # size 1: identity
    with pytest.raises(ValueError):
        motion_blur_kernel(0, 0.0)


def test_photometric_augmentation():
    rng_img = np.random.default_rng(0)
    crop = rng_img.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    plain = dict(brightness=0, contrast=0, saturation=0, blur_p=0.0)
    # flip only: the crop or its mirror, seeded
    outs = [augment_face(crop, np.random.default_rng(s), **plain) for s in range(20)]
    assert all(np.array_equal(o, crop) or np.array_equal(o, crop[:, ::-1]) for o in outs)
    assert any(np.array_equal(o, crop[:, ::-1]) for o in outs) and any(np.array_equal(o, crop) for o in outs)
    assert np.array_equal(augment_face(crop, np.random.default_rng(3)), augment_face(crop, np.random.default_rng(3)))
    # brightness only on a constant 100 image: 100 x u with u in [0.8, 1.2]
    grey = np.full((8, 8, 3), 100, np.uint8)
    vals = {int(augment_face(grey, np.random.default_rng(s), flip=False, contrast=0, saturation=0,
                             blur_p=0.0)[0, 0, 0]) for s in range(50)}
    assert min(vals) >= 80 and max(vals) <= 120 and len(vals) > 10
    # contrast only keeps the mean (no clipping at these values); saturation only leaves a grey image grey
    mid = np.random.default_rng(1).integers(100, 150, (8, 8, 3)).astype(np.uint8)
    c = augment_face(mid, np.random.default_rng(5), flip=False, brightness=0, saturation=0, blur_p=0.0)
    assert abs(c.astype(float).mean() - mid.astype(float).mean()) < 0.6
    g = augment_face(grey, np.random.default_rng(5), flip=False, brightness=0, contrast=0, blur_p=0.0)
    assert np.array_equal(g, grey)
    # blur always on a constant image changes nothing
    assert np.array_equal(augment_face(grey, np.random.default_rng(2), flip=False, brightness=0, contrast=0,
                                       saturation=0, blur_p=1.0), grey)
