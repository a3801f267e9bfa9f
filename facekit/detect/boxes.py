"""Box utilities. Boxes are ``box_xyxy`` in pixel indices, MTCNN convention: width = x2 - x1 + 1."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` (n,4) and of ``b`` (m,4), continuous-area convention -> (n, m)."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union",
        groups: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first (within each group).

    ``method`` "union" divides the overlap by the union (IoU), "min" by the smaller box (MTCNN's O-Net step).
    ``groups`` (n,) keeps boxes of different groups (images of a batch) from suppressing each other; each group
    is suppressed on its own, so the cost grows with the boxes of one image, not of the batch.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    scores = np.asarray(scores)
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if groups is None:
        return _nms_one(boxes, scores, threshold, method)
    groups = np.asarray(groups)
    kept = [np.flatnonzero(groups == g)[_nms_one(boxes[groups == g], scores[groups == g], threshold, method)]
            for g in np.unique(groups)]
    return np.concatenate(kept)


def _nms_one(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str) -> np.ndarray:
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1, 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1, 0)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.int64)


def to_square(boxes_xyxy: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (side = the longer side)."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += (w - side) * 0.5
    b[:, 1] += (h - side) * 0.5
    b[:, 2:4] = b[:, 0:2] + side[:, None]
    return b


def apply_regression(boxes_xyxy: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Shift box corners by the nets' offsets, expressed in box widths/heights."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    return b + np.asarray(reg, dtype=np.float64) * np.stack([w, h, w, h], axis=1)


def resize_area(images_bchw: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Shrink like ``mode="area"`` but fast on CPU: an integer average pool, then antialiased bilinear."""
    h, w = images_bchw.shape[-2:]
    k = int(min(h / size_hw[0], w / size_hw[1]))
    x = F.avg_pool2d(images_bchw, k, ceil_mode=True) if k >= 2 else images_bchw
    if tuple(x.shape[-2:]) == tuple(size_hw):
        return x
    return F.interpolate(x, size=size_hw, mode="bilinear", align_corners=False, antialias=True)


class ImagePyramid:
    """A float image batch and its 2x average-pooled levels, built on first use and shared by every caller."""

    def __init__(self, images_bchw: torch.Tensor, max_level: int = 5) -> None:
        self.levels = [images_bchw.float()]
        self.max_level = max_level

    @property
    def base(self) -> torch.Tensor:
        return self.levels[0]

    def level(self, i: int) -> torch.Tensor:
        while len(self.levels) <= i:
            self.levels.append(F.avg_pool2d(self.levels[-1], 2, ceil_mode=True))
        return self.levels[i]


def warp_patches(images: torch.Tensor | ImagePyramid, image_index: torch.Tensor, out_to_in_n23: torch.Tensor,
                 out_hw: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Sample one patch per row: output pixel (x, y) reads input pixel ``A @ [x, y, 1]`` of image ``image_index``.

    All patches of one image share one ``grid_sample`` call, so no per-patch copy of a frame is made.
    ``antialias``: a patch that shrinks its source by s reads from the 2x average-pooled pyramid level
    floor(log2 s), so bilinear sampling never skips pixels (what ``area`` resizing gives, at pyramid cost).
    Outside the image reads zeros. Returns (n, C, out_h, out_w) float.
    """
    pyramid = images if isinstance(images, ImagePyramid) else ImagePyramid(images)
    n = out_to_in_n23.shape[0]
    c = pyramid.base.shape[1]
    dev = pyramid.base.device
    out = torch.zeros((n, c, *out_hw), dtype=torch.float32, device=dev)
    if n == 0:
        return out
    a = out_to_in_n23.to(dev, torch.float32)
    idx = image_index.to(dev, torch.long)
    level = torch.zeros(n, dtype=torch.long, device=dev)
    if antialias:
        scale = torch.sqrt(torch.abs(torch.linalg.det(a[:, :, :2])))
        level = torch.floor(torch.log2(scale.clamp(min=1.0))).long().clamp(0, pyramid.max_level)
    for lv in torch.unique(level).tolist():
        sel = (level == lv).nonzero(as_tuple=True)[0]
        s = 0.5 ** lv  # level pixel centre x_l = s * (x + 0.5) - 0.5
        a_l = a[sel] * s
        a_l[:, :, 2] += 0.5 * s - 0.5
        out[sel] = _grid_sample_patches(pyramid.level(lv), idx[sel], a_l, out_hw)
    return out


def _grid_sample_patches(images: torch.Tensor, idx: torch.Tensor, a: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    b, c, h_in, w_in = images.shape
    n, dev = a.shape[0], images.device
    gh, gw = out_hw
    gy, gx = torch.meshgrid(torch.arange(gh, device=dev, dtype=torch.float32),
                            torch.arange(gw, device=dev, dtype=torch.float32), indexing="ij")
    src_x = a[:, 0, 0, None, None] * gx + a[:, 0, 1, None, None] * gy + a[:, 0, 2, None, None]
    src_y = a[:, 1, 0, None, None] * gx + a[:, 1, 1, None, None] * gy + a[:, 1, 2, None, None]
    grid = torch.stack([(2 * src_x + 1) / w_in - 1, (2 * src_y + 1) / h_in - 1], dim=-1)  # (n, gh, gw, 2)
    # patches of image i go to rows [slot * gh, (slot + 1) * gh) of a tall grid for image i (no frame copies)
    counts = torch.bincount(idx, minlength=b)
    order = torch.argsort(idx, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(idx)
    slot[order] = torch.arange(n, device=dev) - starts[idx[order]]
    slots = int(counts.max())
    big = torch.full((b, slots, gh, gw, 2), -2.0, device=dev)  # -2 reads zeros
    big[idx, slot] = grid
    out = F.grid_sample(images, big.view(b, slots * gh, gw, 2), mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.view(b, c, slots, gh, gw).permute(0, 2, 1, 3, 4)[idx, slot]


def box_crop_affine(boxes_xyxy: np.ndarray, out_size: int) -> torch.Tensor:
    """Affine maps (n,2,3) that crop each box (MTCNN inclusive convention) and resize it to out_size^2."""
    b = torch.as_tensor(np.asarray(boxes_xyxy, dtype=np.float32))
    sx = (b[:, 2] - b[:, 0] + 1) / out_size
    sy = (b[:, 3] - b[:, 1] + 1) / out_size
    a = torch.zeros(b.shape[0], 2, 3)
    # output pixel centre x_o maps to x1 + (x_o + 0.5) * sx - 0.5
    a[:, 0, 0], a[:, 0, 2] = sx, b[:, 0] + 0.5 * sx - 0.5
    a[:, 1, 1], a[:, 1, 2] = sy, b[:, 1] + 0.5 * sy - 0.5
    return a
