"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, 128-d, 99.38% on LFW) in PyTorch,
with its weights read directly from dlib's ``.dat`` file.

The network is ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp``:

    input_rgb_image_sized<150>: (pixel - channel mean) / 256, means R 122.782, G 117.001, B 104.298
    con 32 7x7 /2 (no padding: dlib pads only stride-1 convs) -> affine -> relu -> max_pool 3x3 /2 (no padding)
    level4: 3 x ares<32>; level3: ares_down<64> + 3 x ares<64>; level2: ares_down<128> + 2 x ares<128>;
    level1: ares_down<256> + 2 x ares<256>; level0: ares_down<256>
    avg_pool_everything -> fc_no_bias<128>

    ares<N>      = relu(add_prev(x, affine(con3x3(relu(affine(con3x3(x)))))))
    ares_down<N> = relu(add_prev(avg_pool 2x2/2 (x), affine(con3x3(relu(affine(con3x3 /2 (x)))))))

``affine`` is a per-channel gamma * x + beta (batch norm folded at inference). dlib's ``add_prev`` adds two
tensors of different shapes over their common top-left region and keeps the rest of the larger one: the channel
zero-padding of the first down block of each level, and at level1 a 3x3 block output added to a 4x4 pooled skip.

The file holds the whole network object (``dlib/dnn/core.h``): the loss layer, then one version number per layer
from the outside in, then the input layer, then each layer's parameters from the inside out. ``read_dlib_resnet``
walks exactly that layout and checks every layer's kind, version and shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facekit.models.dlib_format import DlibReader

INPUT_SIZE = 150
CHANNEL_MEANS = (122.782, 117.001, 104.298)  # dlib/dnn/input.h, input_rgb_image
# (width, down) of each residual block, input side first (level4 ... level0)
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 + \
    [(256, True)] + [(256, False)] * 2 + [(256, True)]


class Affine(nn.Module):
    """dlib's ``affine_`` in conv mode: y = gamma[c] x + beta[c]."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.ones(ch)), nn.Parameter(torch.zeros(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the common (top-left) region, the larger tensor's values elsewhere."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))
    pad = lambda t: F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))  # noqa: E731
    return pad(a) + pad(b)


class DlibBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, 2 if down else 1, 0 if down else 1)
        self.aff1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.aff2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(skip, y))


class DlibFaceResNet(nn.Module):
    """(B, 3, 150, 150) RGB in dlib's input scale ((pixel - mean) / 256, see ``from_pixels``) -> (B, 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, 2, 0)
        self.aff1 = Affine(32)
        cin, blocks = 32, []
        for cout, down in BLOCKS:
            blocks.append(DlibBlock(cin, cout, down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    @staticmethod
    def from_pixels(pixels_b3hw: torch.Tensor) -> torch.Tensor:
        """RGB pixel values 0..255 -> the network's input."""
        means = torch.tensor(CHANNEL_MEANS, dtype=pixels_b3hw.dtype, device=pixels_b3hw.device)
        return (pixels_b3hw - means[:, None, None]) / 256.0

    def forward(self, x_b3hw: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.aff1(self.conv1(x_b3hw))), 3, 2)
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


class DlibBackbone(nn.Module):
    """``build_backbone("dlib_resnet")``: the network as a trainable facekit backbone. Takes facekit's input scale
    (pixel - 127.5) / 127.5 and converts to dlib's; 128-d features; any input size (global average pool), 150
    is what the pretrained weights saw. ``model.init: dlib-torch:default`` starts from dlib's weights."""

    def __init__(self, num_features: int = 128, input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        if num_features != 128:
            from facekit.errors import InputError

            raise InputError(f"dlib_resnet has 128-d features (model.embedding: 128), got {num_features}")
        self.net = DlibFaceResNet()

    def forward(self, x_b3hw: torch.Tensor) -> torch.Tensor:
        return self.net(DlibFaceResNet.from_pixels(x_b3hw * 127.5 + 127.5))


# -- the .dat layout ----------------------------------------------------------------------------------------------
def _layer_list() -> list[tuple]:
    """The layers of anet_type from the outside in: ("fc", n) ... ("con", n, k, stride) on the input.
    "tag" / "skip" entries are dlib's tag and skip layers (a version number, no parameters)."""
    def ares(n: int) -> list[tuple]:
        return [("relu",), ("add_prev",), ("affine", n), ("con", n, 3, 1), ("relu",), ("affine", n),
                ("con", n, 3, 1), ("tag",)]

    def ares_down(n: int) -> list[tuple]:
        return [("relu",), ("add_prev",), ("avg_pool", 2, 2), ("skip",), ("tag",), ("affine", n), ("con", n, 3, 1),
                ("relu",), ("affine", n), ("con", n, 3, 2), ("tag",)]

    out = [("fc", 128), ("avg_pool", 0, 1)]
    for n, down in reversed(BLOCKS):
        out += ares_down(n) if down else ares(n)
    return out + [("max_pool", 3, 2), ("relu",), ("affine", 32), ("con", 32, 7, 2)]


def _read_con(r: DlibReader, n: int, k: int, stride: int, cin: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    version = r.tag(("con_4", "con_5", "con_6"), where)
    params = r.tensor(f"{where} params").reshape(-1)
    num_filters, nr, nc = r.int(where), r.int(where), r.int(where)
    sy, sx, py, px = (r.int(where) for _ in range(4))
    pad = k // 2 if stride == 1 else 0
    if (num_filters, nr, nc, sy, sx, py, px) != (n, k, k, stride, stride, pad, pad):
        raise r.fail(f"{where}: conv {num_filters} {nr}x{nc} /{sy} pad {py}, expected {n} {k}x{k} /{stride} pad {pad}")
    filt, _bias = r.alias_tensor(where), r.alias_tensor(where)
    for _ in range(4):
        r.float(where)  # learning-rate and weight-decay multipliers
    if version in ("con_5", "con_6"):
        r.bool(where)
    if version == "con_6":
        r.bool(where)
    if filt != (n, cin, k, k) or params.size != n * cin * k * k + n:
        raise r.fail(f"{where}: filters {filt} ({params.size} values), expected ({n}, {cin}, {k}, {k}) + {n} biases")
    return params[:n * cin * k * k].reshape(n, cin, k, k), params[n * cin * k * k:]


def _read_affine(r: DlibReader, n: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    version = r.tag(("affine_", "affine_2"), where)
    params = r.tensor(f"{where} params").reshape(-1)
    gamma, _beta = r.alias_tensor(where), r.alias_tensor(where)
    mode = r.int(where)
    if version == "affine_2":
        r.bool(where)
    if params.size != 2 * n or gamma != (1, n, 1, 1) or mode != 0:  # 0: CONV_MODE
        raise r.fail(f"{where}: affine of {params.size // 2} channels (mode {mode}), expected {n} in conv mode")
    return params[:n], params[n:]


def read_dlib_resnet(path: Path) -> DlibFaceResNet:
    """The network with the weights of dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (any file of that
    architecture). Raises InputError naming the file for a missing, truncated or corrupt file or another net."""
    r = DlibReader(path)
    r.version((1,), "loss layer")
    r.tag(("loss_metric_", "loss_metric_2"), "loss layer (a dlib metric-learning network)")
    r.float("loss margin"), r.float("loss distance threshold")
    layers = _layer_list()
    add_versions = []
    for i, layer in enumerate(layers[:-1]):  # the last (the conv on the input) is the input specialisation
        if layer[0] in ("tag", "skip"):
            r.version((1,), f"layer {i} ({layer[0]})")
            add_versions.append(None)
        else:
            add_versions.append(r.version((1, 2), f"layer {i} ({layer[0]})"))
    input_version = r.version((2, 3), f"layer {len(layers) - 1} (con on the input)")
    add_versions.append(input_version)
    r.tag(("input_rgb_image_sized",), "the input layer (150x150 RGB)")
    means = tuple(r.float("input channel means") for _ in range(3))
    size = (r.int("input size"), r.int("input size"))
    if size != (INPUT_SIZE, INPUT_SIZE) or not np.allclose(means, CHANNEL_MEANS, atol=1e-3):
        raise r.fail(f"input {size} with means {means}, expected 150x150 with {CHANNEL_MEANS}")

    net = DlibFaceResNet()
    state: dict[str, torch.Tensor] = {}
    # parameters from the inside out; torch modules in the same order
    targets = [("conv", "conv1"), ("affine", "aff1")]
    for b, _ in enumerate(BLOCKS):
        targets += [("conv", f"blocks.{b}.conv1"), ("affine", f"blocks.{b}.aff1"),
                    ("conv", f"blocks.{b}.conv2"), ("affine", f"blocks.{b}.aff2")]
    target_iter = iter(targets)
    cin = 3
    for i in reversed(range(len(layers))):
        layer, where = layers[i], f"layer {i} ({layers[i][0]})"
        kind = layer[0]
        if kind in ("tag", "skip"):
            continue
        if kind == "con":
            _, name = next(target_iter)
            w, bias = _read_con(r, layer[1], layer[2], layer[3], cin, where)
            state[f"{name}.weight"], state[f"{name}.bias"] = torch.from_numpy(w), torch.from_numpy(bias)
            cin = layer[1]
        elif kind == "affine":
            _, name = next(target_iter)
            g, bt = _read_affine(r, layer[1], where)
            state[f"{name}.gamma"], state[f"{name}.beta"] = torch.from_numpy(g.copy()), torch.from_numpy(bt.copy())
        elif kind == "relu":
            if r.tag(("relu_", "relu_2"), where) == "relu_2":
                r.bool(where)
        elif kind == "add_prev":
            r.tag(("add_prev_",), where)
        elif kind in ("max_pool", "avg_pool"):
            r.tag((f"{kind}_2",), where)
            window, stride = layer[1], layer[2]
            got = tuple(r.int(where) for _ in range(6))
            if got != (window, window, stride, stride, 0, 0):
                raise r.fail(f"{where}: pooling {got}, expected window {window} stride {stride} no padding")
        elif kind == "fc":
            version = r.tag(("fc_2", "fc_3"), where)
            n_out, n_in = r.int(where), r.int(where)
            params = r.tensor(f"{where} params").reshape(-1)
            r.alias_tensor(where), r.alias_tensor(where)
            bias_mode = r.int(where)
            for _ in range(4):
                r.float(where)
            if version == "fc_3":
                r.bool(where)
            if (n_out, n_in, bias_mode) != (128, 256, 1) or params.size != 256 * 128:  # 1: FC_NO_BIAS
                raise r.fail(f"{where}: fc {n_in} -> {n_out} (bias mode {bias_mode}), expected 256 -> 128 without bias")
            state["fc.weight"] = torch.from_numpy(params.reshape(256, 128).T.copy())  # dlib: x (B, in) @ W (in, out)
        # the add_layer's own state: three flags and its cached tensors (empty in a cleaned network)
        for flag in range(3):
            r.bool(f"{where} flags")
        r.tensor(f"{where} x_grad"), r.tensor(f"{where} cached output")
        if i == len(layers) - 1:  # the layer on the input (add_layer's input specialisation)
            r.tensor(f"{where} grad_final")
            if input_version == 3:
                r.int(f"{where} sample expansion factor")
        elif add_versions[i] == 2:
            r.tensor(f"{where} params_grad")
    if not r.at_end():
        raise r.fail(f"{len(r.data) - r.pos} bytes left after the network (another architecture?)")
    net.load_state_dict(state, strict=True)
    return net.eval()
