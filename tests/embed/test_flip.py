"""Issue 24: --flip on every protocol: a feature is the image's plus its mirror's (insightface's evaluation), for
torch and non-torch extractors alike, and the setting is part of the feature cache's key."""

from __future__ import annotations

import numpy as np
import torch

from facekit.bench.source import FeatureSource
from facekit.embed.extractors import FeatureExtractor


def test_flip_adds_the_mirrors_feature_for_every_kind_of_extractor():
    crops = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    col = torch.arange(8, dtype=torch.float32)  # a feature that sees left from right: sum of x * column index
    torch_ext = FeatureExtractor("t", "fp", lambda x: (x * col).sum(dim=(2, 3)), flip=True)
    x = crops.astype(np.float32) / 127.5 - 1.0
    w = np.arange(8)[None, None, :, None]  # the column index, (B, H, W, C) layout
    mine = (x * w).sum(axis=(1, 2))
    mirror = (x[:, :, ::-1] * w).sum(axis=(1, 2))
    np.testing.assert_allclose(torch_ext.embed(crops), mine + mirror, rtol=1e-4)
    torch_ext.flip = False
    np.testing.assert_allclose(torch_ext.embed(crops), mine, rtol=1e-4)
    uint8 = lambda c: (c.astype(np.float64) * np.arange(8)[None, None, :, None]).sum(axis=(1, 2))  # noqa: E731
    dlib_like = FeatureExtractor("u", "fp", None, flip=True, embed_uint8=uint8)
    np.testing.assert_allclose(dlib_like.embed(crops), uint8(crops) + uint8(crops[:, :, ::-1]))


def test_the_flip_setting_keys_the_feature_cache(tmp_path):
    ext = FeatureExtractor("t", "abc", lambda x: x.mean(dim=(2, 3)), flip=True)
    on = FeatureSource(ext, cache_dir=tmp_path).fingerprint
    ext.flip = False
    assert on == "t-abc-flip" and FeatureSource(ext, cache_dir=tmp_path).fingerprint == "t-abc"


def test_onnx_runs_on_cuda_where_onnxruntime_has_the_provider():
    from facekit.embed.extractors import onnx_providers

    cpu_only = ["CPUExecutionProvider"]
    assert onnx_providers(torch.device("cuda", 1), cpu_only) == cpu_only
    assert onnx_providers(torch.device("cuda", 1), ["CUDAExecutionProvider", *cpu_only]) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert onnx_providers(torch.device("cpu"), ["CUDAExecutionProvider", *cpu_only]) == cpu_only
