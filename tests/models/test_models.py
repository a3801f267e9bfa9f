"""Backbones against the networks the papers cite, with numbers worked out by hand from their definitions."""

import pytest
import torch
from torch import nn

from facekit.errors import InputError
from facekit.models import build_backbone


def _conv(cin, cout):  # a 3x3 conv of the prototxt: weights + bias
    return cin * cout * 9 + cout


def test_resnet27_layer_sequence_is_the_caffe_face_prototxt():
    """ydwen/caffe-face face_example/face_deploy.prototxt, read top to bottom: conv1a 32, conv1b 64, pool1b,
    res2 x1 (64), conv2 128, pool2, res3 x2 (128), conv3 256, pool3, res4 x5 (256), conv4 512, pool4, res5 x3 (512),
    fc5 512. 27 convolutions, PReLU after each, no BatchNorm."""
    net = build_backbone("resnet27", input_size=(112, 96))
    seq = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            seq.append(("conv", m.in_channels, m.out_channels, m.padding[0]))
        elif isinstance(m, nn.MaxPool2d):
            seq.append(("pool",))
    unit = lambda c: [("conv", c, c, 1), ("conv", c, c, 1)]  # noqa: E731
    expected = [("conv", 3, 32, 0), ("conv", 32, 64, 0), ("pool",), *unit(64),
                ("conv", 64, 128, 0), ("pool",), *unit(128) * 2,
                ("conv", 128, 256, 0), ("pool",), *unit(256) * 5,
                ("conv", 256, 512, 0), ("pool",), *unit(512) * 3]
    assert seq == expected and sum(s[0] == "conv" for s in seq) == 27
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert sum(isinstance(m, nn.PReLU) for m in net.modules()) == 27
    assert net.fc5.in_features == 512 * 5 * 4 and net.fc5.out_features == 512  # 112x96 -> 5x4 after pool4


def test_resnet27_parameter_count_by_hand():
    # from the prototxt, per layer (conv weights + bias; PReLU one slope per channel):
    stem = _conv(3, 32) + 32 + _conv(32, 64) + 64                      # 18,560 + 928 = 19,488
    units = sum(n * 2 * (_conv(c, c) + c) for n, c in ((1, 64), (2, 128), (5, 256), (3, 512)))
    widen = sum(_conv(a, b) + b for a, b in ((64, 128), (128, 256), (256, 512)))
    assert stem + units + widen == 22_299_680
    total = {(112, 96): 22_299_680 + 512 * 5 * 4 * 512 + 512,        # 27,543,072 (the prototxt's input)
             128: 22_299_680 + 512 * 6 * 6 * 512 + 512}              # 31,737,376 (SeqFace's 128 crops)
    for size, count in total.items():
        net = build_backbone("resnet27", input_size=size)
        assert sum(p.numel() for p in net.parameters()) == count
        assert net(torch.zeros(2, 3, *((size, size) if isinstance(size, int) else size))).shape == (2, 512)
    assert total[(112, 96)] == 27_543_072 and total[128] == 31_737_376


def test_resnet27_unit_biases_stay_zero():
    net = build_backbone("resnet27", input_size=64, widths=(8, 8, 8, 8), stem=4)
    frozen = [p for n, p in net.named_parameters() if not p.requires_grad]
    assert len(frozen) == 2 * 11 and all(float(p.abs().max()) == 0 for p in frozen)


def test_sphereface20_and_64_keep_the_sphereface_layout():
    # SphereFace-20: 4 stride-2 convs + 2 x (1+2+4+1) unit convs = 20 layers with fc5
    for name, n_conv in (("sphereface20", 4 + 2 * 8), ("sphereface64", 4 + 2 * 30)):
        net = build_backbone(name, input_size=32, widths=(4, 4, 4, 4))
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == n_conv and sum(m.stride[0] == 2 for m in convs) == 4
    with pytest.raises(InputError, match="resnet27"):
        build_backbone("sphereface27")
