"""P-Net, R-Net and O-Net (Zhang et al. 2016) in PyTorch, loading the weights shipped by the ``mtcnn`` package.

The package stores Keras ``get_weights()`` lists as joblib+lz4 pickles; no TensorFlow is needed to read them.
Keras -> PyTorch: conv kernels HWIO -> OIHW, PReLU alpha flattened, dense ``W.T``. The Keras R/O-Nets permute
(H, W) before flattening, so the same permute is done here instead of reordering dense rows.
Keras ``MaxPooling2D(padding="same")`` equals PyTorch ``ceil_mode=True`` for these shapes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facekit.errors import InputError


def pointwise_conv(x_bchw: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution summed channel by channel in a fixed order: one elementwise multiply and add per input
    channel, so every output value is the same whatever the thread count or batch size.

    oneDNN's 1x1 kernel with only 2-4 output channels splits its sum over the input channels differently with one
    thread than with several (P-Net's scores moved by 2e-7, enough to flip a proposal at the 0.6 threshold and,
    through the tracker, which faces a dataset holds). Costs ~1% of P-Net (6 x 32 values per window)."""
    w_oc = conv.weight[:, :, 0, 0]  # (O, C)
    x_bchw = x_bchw.contiguous()  # NCHW: each channel one plane (a channels-last slice would stride the batch)
    out = conv.bias.view(1, -1, 1, 1).expand(x_bchw.shape[0], -1, *x_bchw.shape[2:]).clone()
    for c in range(w_oc.shape[1]):
        out += x_bchw[:, c:c + 1] * w_oc[:, c].view(1, -1, 1, 1)
    return out


def face_probability(logits_b2: torch.Tensor) -> torch.Tensor:
    """Softmax's second entry for two classes, as the reference computes it in float32: ``e1 / (e0 + e1)`` with
    ``e = exp(l - max(l))``. Only ``exp`` runs in float64 (then rounded to float32): torch's float32 ``exp``
    differs in the last bit between SIMD paths (Sleef vs libm), and a score next to a threshold, or two proposals
    tied in NMS's order, then flipped. Subtraction, sum and division are exactly rounded on every path."""
    m = torch.maximum(logits_b2[:, 0], logits_b2[:, 1])
    e0 = torch.exp((logits_b2[:, 0] - m).double()).to(logits_b2.dtype)
    e1 = torch.exp((logits_b2[:, 1] - m).double()).to(logits_b2.dtype)
    return e1 / (e0 + e1)


def _keras_flatten(x_nchw: torch.Tensor) -> torch.Tensor:
    # Keras: NHWC -> Permute((2,1,3)) -> NWHC -> flatten. In NCHW that is x.permute(0, 3, 2, 1).
    return x_nchw.permute(0, 3, 2, 1).reshape(x_nchw.shape[0], -1)


class PNet(nn.Module):
    """Fully convolutional proposal net: 12x12 window, stride 2. Returns (bbox_reg Bx4xhxw, face_prob Bxhxw)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.bbox = nn.Conv2d(32, 4, 1)
        self.cls = nn.Conv2d(32, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        return pointwise_conv(features, self.bbox), self.probability(features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 32-channel map both heads read (B, 32, h, w)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        return self.prelu3(self.conv3(self.prelu2(self.conv2(x))))

    def probability(self, features: torch.Tensor) -> torch.Tensor:
        """Face probability per window (B, h, w)."""
        return face_probability(pointwise_conv(features, self.cls))

    def regression_at(self, features: torch.Tensor, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The bbox head at the windows (b, y, x) only, (n, 4): the same sum, channel by channel in the same order,
        as ``pointwise_conv`` over the whole map (so the same bits), for the few windows above the threshold."""
        picked = features[b, :, y, x]  # (n, 32)
        w_oc = self.bbox.weight[:, :, 0, 0]
        out = self.bbox.bias.view(1, -1).expand(len(picked), -1).clone()
        for c in range(w_oc.shape[1]):
            out += picked[:, c:c + 1] * w_oc[:, c].view(1, -1)
        return out


class RNet(nn.Module):
    """Refinement net on 24x24 crops. Returns (bbox_reg Nx4, face_prob N)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.fc4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.bbox = nn.Linear(128, 4)
        self.cls = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.fc4(_keras_flatten(x)))
        return self.bbox(x), face_probability(self.cls(x))


class ONet(nn.Module):
    """Output net on 48x48 crops. Returns (bbox_reg Nx4, landmarks Nx10 as x1..x5,y1..y5, face_prob N)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.fc5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.bbox = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)
        self.cls = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.fc5(_keras_flatten(x)))
        return self.bbox(x), self.landmarks(x), face_probability(self.cls(x))


def _weights_dir() -> Path:
    # find_spec, not import: importing ``mtcnn`` pulls in TensorFlow.
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("MTCNN weights: the 'mtcnn' package is not installed; pip install mtcnn")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def _load_keras_list(net: nn.Module, arrays: list[np.ndarray], path: Path) -> None:
    """Copy a Keras weight list into ``net``, module by module in definition order."""
    it = iter(arrays)
    try:
        for module in net.children():
            if isinstance(module, nn.Conv2d):
                module.weight.data = torch.from_numpy(next(it).transpose(3, 2, 0, 1).copy())
                module.bias.data = torch.from_numpy(next(it).copy())
            elif isinstance(module, nn.Linear):
                module.weight.data = torch.from_numpy(next(it).T.copy())
                module.bias.data = torch.from_numpy(next(it).copy())
            elif isinstance(module, nn.PReLU):
                module.weight.data = torch.from_numpy(next(it).ravel().copy())
    except StopIteration:
        raise InputError(f"{path}: too few weight arrays for {type(net).__name__}") from None
    if next(it, None) is not None:
        raise InputError(f"{path}: more weight arrays than {type(net).__name__} has parameters")



def load_mtcnn_nets(weights_dir: Path | None = None) -> tuple[PNet, RNet, ONet]:
    """Build the three nets in eval mode with the ``mtcnn`` package's pretrained weights."""
    import joblib  # installed with mtcnn

    folder = Path(weights_dir) if weights_dir is not None else _weights_dir()
    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, ("pnet", "rnet", "onet")):
        path = folder / f"{name}.lz4"
        if not path.is_file():
            raise InputError(f"{path}: MTCNN weight file not found")
        _load_keras_list(net, list(joblib.load(path)), path)
        net.eval().requires_grad_(False)
    return nets
