"""Issue 24: every public insightface checkpoint loads. The expected state_dict layouts (parameter names and
shapes) are enumerated here from insightface's published definitions (``recognition/arcface_torch/backbones/
iresnet.py`` and ``mobilefacenet.py``), as facts, not produced by facekit's modules; a state_dict of exactly that
layout loads strictly through ``--model PREFIX:backbone.pth`` and a wrong one is refused."""

from __future__ import annotations

import pytest
import torch

from facekit.embed.extractors import load_extractor
from facekit.errors import InputError


def _bn(out: dict, name: str, c: int) -> None:
    out.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})


def iresnet_layout(layers: tuple[int, int, int, int], d: int = 512) -> dict:
    """insightface IResNet: conv1/bn1/prelu, layer1..4 of IBasicBlock (bn1, conv1 3x3, bn2, prelu, conv2 3x3 with
    the stride, bn3; the first block of each layer has downsample = conv1x1 + BN), bn2, fc (512*7*7 -> d),
    features (BatchNorm1d)."""
    out = {"conv1.weight": (64, 3, 3, 3), "prelu.weight": (64,)}
    _bn(out, "bn1", 64)
    inp = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for b in range(n):
            p = f"layer{i}.{b}"
            _bn(out, f"{p}.bn1", inp)
            out[f"{p}.conv1.weight"] = (planes, inp, 3, 3)
            _bn(out, f"{p}.bn2", planes)
            out[f"{p}.prelu.weight"] = (planes,)
            out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            _bn(out, f"{p}.bn3", planes)
            if b == 0:
                out[f"{p}.downsample.0.weight"] = (planes, inp, 1, 1)
                _bn(out, f"{p}.downsample.1", planes)
            inp = planes
    _bn(out, "bn2", 512)
    out.update({"fc.weight": (d, 512 * 49), "fc.bias": (d,)})
    _bn(out, "features", d)
    return out


def mobilefacenet_layout(blocks: tuple[int, int, int, int], scale: int, d: int = 512) -> dict:
    """insightface MobileFaceNet: ConvBlock = layers.{0 conv, 1 BN, 2 PReLU}; LinearBlock = layers.{0 conv, 1 BN};
    DepthWise = layers.{0 ConvBlock 1x1 -> groups, 1 ConvBlock 3x3 depthwise, 2 LinearBlock 1x1};
    Residual = layers.<i> DepthWise; GDC = layers.{0 LinearBlock 7x7 depthwise, 2 Linear (no bias), 3 BN1d}."""
    out: dict = {}

    def conv(name, cin, cout, k, groups=1, act=True):
        out[f"{name}.layers.0.weight"] = (cout, cin // groups, k, k)
        _bn(out, f"{name}.layers.1", cout)
        if act:
            out[f"{name}.layers.2.weight"] = (cout,)

    def depthwise(name, cin, cout, groups):
        conv(f"{name}.layers.0", cin, groups, 1)
        conv(f"{name}.layers.1", groups, groups, 3, groups)
        conv(f"{name}.layers.2", groups, cout, 1, act=False)

    def residual(name, c, n, groups):
        for i in range(n):
            depthwise(f"{name}.layers.{i}", c, c, groups)

    w1, w2 = 64 * scale, 128 * scale
    conv("layers.0", 3, w1, 3)
    if blocks[0] == 1:
        conv("layers.1", w1, w1, 3, groups=64)
    else:
        residual("layers.1", w1, blocks[0], 128)
    depthwise("layers.2", w1, w1, 128)
    residual("layers.3", w1, blocks[1], 128)
    depthwise("layers.4", w1, w2, 256)
    residual("layers.5", w2, blocks[2], 256)
    depthwise("layers.6", w2, w2, 512)
    residual("layers.7", w2, blocks[3], 256)
    conv("conv_sep", w2, 512, 1)
    conv("features.layers.0", 512, 512, 7, groups=512, act=False)
    out["features.layers.2.weight"] = (d, 512)
    _bn(out, "features.layers.3", d)
    return out


CASES = {"iresnet200": iresnet_layout((6, 26, 60, 6)), "iresnet50": iresnet_layout((3, 4, 14, 3)),
         "mbf": mobilefacenet_layout((1, 4, 6, 2), 2), "mbf_large": mobilefacenet_layout((2, 8, 12, 4), 4)}


def _state(layout: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in layout.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(0)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.05
    return state


@pytest.mark.parametrize("arch", list(CASES))
def test_public_layout_loads_strictly(arch, tmp_path):
    layout = CASES[arch]
    path = tmp_path / "backbone.pth"
    torch.save(_state(layout), path)
    ext = load_extractor(f"{arch}:{path}")
    got = {k: tuple(v.shape) for k, v in ext.module.state_dict().items()}
    assert got == layout  # every name and shape, nothing more, nothing less
    assert ext.embed(torch.randint(0, 255, (2, 112, 112, 3), dtype=torch.uint8).numpy()).shape == (2, 512)


def test_a_layout_from_another_network_is_refused(tmp_path):
    path = tmp_path / "backbone.pth"
    torch.save(_state(CASES["mbf"]), path)
    with pytest.raises(InputError, match="not an insightface iresnet200 backbone"):
        load_extractor(f"iresnet200:{path}")
    wrong = _state(CASES["mbf"])
    wrong["layers.3.layers.0.layers.0.layers.0.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(wrong, path)
    with pytest.raises(InputError, match="weights do not match"):
        load_extractor(f"mbf:{path}")
