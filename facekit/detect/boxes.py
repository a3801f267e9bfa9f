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
    """Non-maximum suppression as the ``mtcnn`` package does it (``smart_nms_from_bboxes``): boxes sorted by score,
    box i is dropped when **any** higher-scored box overlaps it by more than ``threshold`` (dropped or not; plain
    greedy NMS only counts kept ones). Overlap of continuous areas (no +1), divided by the union or, for "min",
    the smaller box. ``groups`` (n,): boxes of different groups (images of a batch) never suppress each other.
    Returns the kept indices, best score first within each group.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores)
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if groups is None:
        return _nms_one(boxes, scores, threshold, method)
    groups = np.asarray(groups)
    kept = [np.flatnonzero(groups == g)[_nms_one(boxes[groups == g], scores[groups == g], threshold, method)]
            for g in np.unique(groups)]
    return np.concatenate(kept)


def _nms_one(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str, block: int = 1024) -> np.ndarray:
    order = np.argsort(scores)[::-1]  # the reference's order, ties included (numpy's default sort, reversed)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = np.ones(len(b), dtype=bool)
    for s in range(0, len(b), block):  # rows in blocks: memory O(block x n), not O(n^2)
        rows = b[s:s + block, None, :]
        inter = (np.clip(np.minimum(rows[..., 2], b[None, :, 2]) - np.maximum(rows[..., 0], b[None, :, 0]), 0, None)
                 * np.clip(np.minimum(rows[..., 3], b[None, :, 3]) - np.maximum(rows[..., 1], b[None, :, 1]), 0, None))
        a = area[s:s + block, None]
        denom = np.minimum(a, area[None]) if method == "min" else a + area[None] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            over = inter / denom > threshold
        higher = np.arange(len(b))[None, :] < np.arange(s, s + len(rows))[:, None]
        keep[s:s + block] = ~(over & higher).any(axis=1)
    return order[keep].astype(np.int64)


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


class AreaResizer:
    """Exact area resizing of one image batch to any size (``tf.image.resize(method=AREA)``, the reference's
    pyramid): output pixel y averages the input over [y * s, (y + 1) * s) with s = H / h, partial pixels weighted
    by their overlap. Computed from running sums (an integral image), built once for the batch and shared by
    every pyramid level, so a level costs its own pixels plus one pass over the rows it reads."""

    def __init__(self, images_bchw: torch.Tensor) -> None:
        self.images = images_bchw.float()
        self.rows = _running_sum(self.images, 2)  # (B, C, H + 1, W)

    def resize(self, h: int, w: int) -> torch.Tensor:
        x = _area_axis(self.images, self.rows, h, 2)  # (B, C, h, W)
        return _area_axis(x, _running_sum(x, 3), w, 3)


def _running_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sums of the first i entries along ``dim``, i = 0..n (n + 1 entries)."""
    shape = list(x.shape)
    shape[dim] += 1
    out = x.new_empty(shape)
    out.narrow(dim, 0, 1).zero_()
    torch.cumsum(x, dim, out=out.narrow(dim, 1, x.shape[dim]))
    return out


def _area_axis(x: torch.Tensor, sums: torch.Tensor, out: int, dim: int) -> torch.Tensor:
    """Output k averages x over [k s, (k + 1) s) along ``dim`` (s = n / out): the difference of the integral at the
    window's two edges. The out + 1 edges are integrated once (each inner edge is both a window's end and the
    next one's start: the same float64 product, so the same bits as integrating each window's two edges)."""
    n = x.shape[dim]
    s = n / out
    edges = torch.clamp(torch.arange(out + 1, device=x.device, dtype=torch.float64) * s, max=n)
    i = torch.clamp(torch.floor(edges).long(), max=n - 1)
    frac = (edges - i).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = out + 1
    at_edges = sums.index_select(dim, i) + frac.view(shape) * x.index_select(dim, i)  # sum of x over [0, edge)
    return (at_edges.narrow(dim, 1, out) - at_edges.narrow(dim, 0, out)) * (1.0 / s)


def shrink_uint8(frames_bhwc: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H/k, W/k): the mean of each k x k block (``avg_pool2d(k, ceil_mode)``).

    When k divides H and W the sums run on 16-bit integers before the one float conversion, at the shrunk
    size: about 2x faster than converting the full frame to float first (measured on 1080p, 2 CPU cores)."""
    b, h, w, c = frames_bhwc.shape
    if h % k or w % k or 255 * k * k > 32767 or not frames_bhwc.is_contiguous():  # int16 sums must not overflow
        return F.avg_pool2d(frames_bhwc.permute(0, 3, 1, 2).float(), k, ceil_mode=True)
    rows = frames_bhwc.view(b, h // k, k, w // k, k * c)
    acc = rows[:, :, 0].to(torch.int16)
    for i in range(1, k):
        acc += rows[:, :, i]
    out = acc[..., :c].clone()
    for i in range(1, k):
        out += acc[..., i * c:(i + 1) * c]
    return out.float().mul_(1.0 / (k * k)).permute(0, 3, 1, 2)


def region_block(frames_hwc, frame_of_region: np.ndarray, regions_xyxy: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W, 3): region r (x0, y0, x1, y1) of frame ``frames_hwc[frame_of_region[r]]`` at the top left
    of slot r, zeros after it; H, W the largest region's."""
    hh = int((regions_xyxy[:, 3] - regions_xyxy[:, 1]).max())
    ww = int((regions_xyxy[:, 2] - regions_xyxy[:, 0]).max())
    block = np.zeros((len(regions_xyxy), hh, ww, 3), np.uint8)
    for r, (f, (x0, y0, x1, y1)) in enumerate(zip(frame_of_region, regions_xyxy)):
        block[r, :y1 - y0, :x1 - x0] = frames_hwc[f][y0:y1, x0:x1]
    return block


class ImagePyramid:
    """An image batch (level 0, as given: uint8 or float) and its 2x average-pooled float levels (level i: the mean
    of each 2^i x 2^i block), each built on first use and shared by every caller. From uint8 images a level whose
    block divides the image is summed in integers from the images themselves (``shrink_uint8``): every level's
    values are multiples of 4^-i small enough for float32, so this is exactly what pooling level i - 1 gives,
    without the float copies in between."""

    def __init__(self, images_bchw: torch.Tensor, max_level: int = 5) -> None:
        self.images = images_bchw
        self.levels: dict[int, torch.Tensor] = {}
        self.max_level = max_level

    @property
    def shape(self) -> torch.Size:
        return self.images.shape

    def level(self, i: int) -> torch.Tensor:
        if i not in self.levels:
            k = 1 << i
            h, w = self.images.shape[-2:]
            if i == 0:  # as given: the sampler reads uint8 pixels as exactly as float ones
                self.levels[0] = self.images
            elif not self.images.is_floating_point() and h % k == 0 and w % k == 0:
                self.levels[i] = shrink_uint8(self.images.permute(0, 2, 3, 1), k)
            else:
                self.levels[i] = F.avg_pool2d(self.level(i - 1).float(), 2, ceil_mode=True)
        return self.levels[i]


def warp_patches(images: torch.Tensor | ImagePyramid, image_index: torch.Tensor, out_to_in_n23: torch.Tensor,
                 out_hw: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Sample one patch per row: output pixel (x, y) reads input pixel ``A @ [x, y, 1]`` of image ``image_index``.

    All patches are gathered straight from their image, so no per-patch copy of a frame is made.
    ``antialias``: a patch that shrinks its source by s reads from the 2x average-pooled pyramid level
    floor(log2 s), so bilinear sampling never skips pixels (what ``area`` resizing gives, at pyramid cost).
    Outside the image reads zeros. Returns (n, C, out_h, out_w) float.
    """
    pyramid = images if isinstance(images, ImagePyramid) else ImagePyramid(images)
    n = out_to_in_n23.shape[0]
    c = pyramid.shape[1]
    dev = pyramid.images.device
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
        out[sel] = _bilinear_patches(pyramid.level(lv), idx[sel], a_l, out_hw)
    return out


def _bilinear_patches(images: torch.Tensor, idx: torch.Tensor, a: torch.Tensor,
                      out_hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear sampling as ``F.grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False)`` with the
    pixel ``a @ [x, y, 1]``, written as exactly rounded elementwise steps in a fixed order (positions and weights
    in float64, the four-tap sum in float32). torch's own sampler gives other last bits on each SIMD path
    (``ATEN_CPU_CAPABILITY`` default vs avx2/avx512: a crop pixel off by one grey level), which flipped which faces
    a dataset kept; these steps give the same bits on every path, thread count and device."""
    b, c, h_in, w_in = images.shape
    n, dev = a.shape[0], images.device
    gh, gw = out_hw
    a = a.to(torch.float64)
    gy = torch.arange(gh, device=dev, dtype=torch.float64).view(1, gh, 1)
    gx = torch.arange(gw, device=dev, dtype=torch.float64).view(1, 1, gw)
    src_x = a[:, 0, 0, None, None] * gx + a[:, 0, 1, None, None] * gy + a[:, 0, 2, None, None]  # (n, gh, gw)
    src_y = a[:, 1, 0, None, None] * gx + a[:, 1, 1, None, None] * gy + a[:, 1, 2, None, None]
    x0f, y0f = torch.floor(src_x), torch.floor(src_y)
    fx, fy = src_x - x0f, src_y - y0f
    x0, y0 = x0f.long(), y0f.long()
    # per axis, once: each tap's in-range mask and clamped coordinate
    in_x = ((x0 >= 0) & (x0 < w_in), (x0 >= -1) & (x0 < w_in - 1))
    in_y = ((y0 >= 0) & (y0 < h_in), (y0 >= -1) & (y0 < h_in - 1))
    at_x = (x0.clamp(0, w_in - 1), (x0 + 1).clamp(0, w_in - 1))
    at_y = (y0.clamp(0, h_in - 1) * w_in, (y0 + 1).clamp(0, h_in - 1) * w_in)
    w_x, w_y = (1.0 - fx, fx), (1.0 - fy, fy)
    image = idx.to(dev).view(n, 1, 1)
    channels_last = images.permute(0, 2, 3, 1).is_contiguous()
    if channels_last or b * h_in * w_in <= 8 * n * gh * gw:  # pixel rows (a copy only for small NCHW images)
        pixels = images.permute(0, 2, 3, 1).reshape(b * h_in * w_in, c)
        image = image * (h_in * w_in)
        gather = lambda at: pixels.index_select(0, (image + at).view(-1)).view(n, gh, gw, c)  # noqa: E731
    else:  # whole NCHW frames: gather from the planes, no copy of the batch
        flat = images.reshape(b, c, h_in * w_in)
        gather = lambda at: flat[image.view(n, 1), :, at.view(n, -1)].view(n, gh, gw, c)  # noqa: E731
    # uint8 images are gathered as they are: a pixel times a float32 weight is the float pixel times it, exactly
    dtype = images.dtype if images.is_floating_point() else torch.float32
    out = None
    for dy in (0, 1):
        for dx in (0, 1):
            weight = torch.where(in_y[dy] & in_x[dx], w_y[dy] * w_x[dx], 0.0).to(dtype).unsqueeze(-1)
            tap = gather(at_y[dy] + at_x[dx]) * weight  # (n, gh, gw, C)
            out = tap if out is None else out + tap
    return out.permute(0, 3, 1, 2)  # (n, C, gh, gw)


def crop_patches(images_bchw: torch.Tensor, image_index: torch.Tensor, boxes_xyxy: np.ndarray, size: int,
                 frame_hw: tuple[int, int] | None = None,
                 offset_xy: np.ndarray | tuple[int, int] | None = None) -> torch.Tensor:
    """``tf.image.crop_and_resize`` of each box to size x size, with the boxes given to it as the reference does
    (``mtcnn.utils.images.extract_patches``: coordinates divided by the image's H and W): patch pixel i samples
    the image at ``y1 (H - 1) / H + i (y2 - y1) (H - 1) / H / (size - 1)`` (x likewise), bilinearly; samples
    outside the image are 127.5 (the reference crops normalised images with extrapolation value 0).
    ``frame_hw``/``offset_xy``: ``images_bchw`` are regions of larger frames, starting at ``offset_xy`` (one
    (x, y) for all, or (n, 2): box i's); boxes and H, W are the frames'. Returns (n, C, size, size) float."""
    h, w = frame_hw or tuple(images_bchw.shape[-2:])
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    fy, fx = (h - 1) / h, (w - 1) / w
    y0, x0 = b[:, 1] * fy, b[:, 0] * fx
    sy, sx = (b[:, 3] - b[:, 1]) * fy / (size - 1), (b[:, 2] - b[:, 0]) * fx / (size - 1)
    off = np.broadcast_to(np.asarray(offset_xy if offset_xy is not None else (0, 0), np.float64).reshape(-1, 2),
                          (len(b), 2))
    a = np.zeros((len(b), 2, 3))
    a[:, 0, 0], a[:, 0, 2] = sx, x0 - off[:, 0]
    a[:, 1, 1], a[:, 1, 2] = sy, y0 - off[:, 1]
    patches = warp_patches(images_bchw, image_index, torch.from_numpy(a), (size, size), antialias=False)
    steps = np.arange(size)
    ys, xs = y0[:, None] + steps * sy[:, None], x0[:, None] + steps * sx[:, None]
    inside_y = torch.from_numpy((ys >= 0) & (ys <= h - 1)).to(patches.device)
    inside_x = torch.from_numpy((xs >= 0) & (xs <= w - 1)).to(patches.device)
    inside = inside_y[:, None, :, None] & inside_x[:, None, None, :]
    return patches.masked_fill(~inside, 127.5)
