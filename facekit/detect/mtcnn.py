"""MTCNN face detector, batched across frames and pyramid scales, on CPU or CUDA.

Pipeline (Zhang et al. 2016): image pyramid -> P-Net proposals -> NMS -> R-Net refinement -> NMS -> O-Net boxes,
5 landmarks and scores -> NMS ("min"). Pixel values are normalised as (x - 127.5) / 128, RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facekit.detect.boxes import (ImagePyramid, apply_regression, box_crop_affine, nms, resize_area, to_square,
                                  warp_patches)
from facekit.detect.mtcnn_nets import load_mtcnn_nets


@dataclass
class Detections:
    """Faces found in one image. Coordinates in the input image's pixels."""

    boxes_xyxy: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    landmarks_5x2: np.ndarray  # (n, 5, 2) float32: left eye, right eye, nose, left mouth, right mouth (image left/right)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = 0.709) -> list[float]:
    """Scales at which a 12 px P-Net window covers faces from ``min_face_size`` px up to the image size."""
    m = 12.0 / min_face_size
    side = min(height, width) * m
    scales = []
    while side >= 12:
        scales.append(m * factor ** len(scales))
        side *= factor
    return scales


def shrink_uint8(frames_bhwc: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H/k, W/k): the mean of each k x k block (``avg_pool2d(k, ceil_mode)``).

    When k divides H and W the sums run on 16-bit integers before the one float conversion, at the shrunk
    size: about 2x faster than converting the full frame to float first (measured on 1080p, 2 CPU cores)."""
    b, h, w, c = frames_bhwc.shape
    if h % k or w % k or k > 128:
        return F.avg_pool2d(frames_bhwc.permute(0, 3, 1, 2).float(), k, ceil_mode=True)
    rows = frames_bhwc.view(b, h // k, k, w // k, k * c)
    acc = rows[:, :, 0].to(torch.int16)
    for i in range(1, k):
        acc += rows[:, :, i]
    out = acc[..., :c].clone()
    for i in range(1, k):
        out += acc[..., i * c:(i + 1) * c]
    return out.float().mul_(1.0 / (k * k)).permute(0, 3, 1, 2)


def _normalise(images_bchw: torch.Tensor) -> torch.Tensor:
    return ((images_bchw - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


class MTCNN:
    """Batched MTCNN. ``detect`` takes a uint8 RGB batch (B, H, W, 3) and returns one ``Detections`` per image.

    ``max_side``: frames whose longer side exceeds it are shrunk for detection by the smallest integer factor that
    brings them to at most ``max_side`` (coordinates are mapped back to the original frame);
    ``pixel_budget`` bounds the pixels of one P-Net forward (memory), ``patch_batch`` the 24 px crops of one R-Net
    call (O-Net gets as many pixels: a quarter as many 48 px crops), so memory does not depend on how many faces
    a frame has.
    """

    def __init__(self, device: torch.device | str = "cpu", min_face_size: float = 20.0,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8), scale_factor: float = 0.709,
                 max_side: int | None = None, pixel_budget: int = 6_000_000, patch_batch: int = 128) -> None:
        self.device = torch.device(device)
        # channels_last: about 2x faster convs and pools for these small nets on CPU (measured), fine on CUDA
        self.pnet, self.rnet, self.onet = (net.to(self.device, memory_format=torch.channels_last)
                                           for net in load_mtcnn_nets())
        self.min_face_size = float(min_face_size)
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self.max_side = max_side
        self.pixel_budget = pixel_budget
        self.patch_batch = patch_batch

    def _prepare(self, frames_bhwc: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, float]:
        """uint8 (B, H, W, 3) -> float (B, 3, h, w) on the device, shrunk by an integer factor to ``max_side``."""
        if isinstance(frames_bhwc, np.ndarray) and not frames_bhwc.flags.writeable:
            frames_bhwc = frames_bhwc.copy()
        frames = torch.as_tensor(frames_bhwc).to(self.device)
        h, w = frames.shape[1:3]
        if self.max_side and max(h, w) > self.max_side:
            k = math.ceil(max(h, w) / self.max_side)  # an integer average pool: exact area resize, and fast
            return shrink_uint8(frames, k), 1.0 / k
        return frames.permute(0, 3, 1, 2).float(), 1.0

    @torch.inference_mode()
    def detect(self, frames_bhwc: np.ndarray | torch.Tensor) -> list[Detections]:
        """Full MTCNN on a batch (B, H, W, 3) or one image (H, W, 3) of uint8 RGB; one ``Detections`` per image."""
        if frames_bhwc.ndim == 3:
            frames_bhwc = frames_bhwc[None]
        b = len(frames_bhwc)
        if b == 0:
            return []
        images, shrink = self._prepare(frames_bhwc)
        min_face = max(12.0, self.min_face_size * shrink)

        idx, boxes = self._stage_pnet(images, min_face)
        pyramid = ImagePyramid(images)  # shared by the R-Net and O-Net crops
        idx, boxes, _ = self._stage_refine(pyramid, idx, boxes, self.rnet, 24, self.thresholds[1])
        idx, boxes, scores, marks = self._stage_output(pyramid, idx, boxes)

        out = []
        for i in range(b):
            sel = idx == i
            d = Detections((boxes[sel, :4] / shrink).astype(np.float32), scores[sel].astype(np.float32),
                           (marks[sel] / shrink).astype(np.float32))
            if shrink < 1 and len(d):
                # found on the shrunk frame; boxes and landmarks come from O-Net on the full-resolution crops
                r = self.refine(np.asarray(frames_bhwc[i]), d.boxes_xyxy)
                ok = r.scores >= self.thresholds[2]
                d = Detections(r.boxes_xyxy[ok], r.scores[ok], r.landmarks_5x2[ok])
            out.append(d)
        return out

    # -- stage 1 ---------------------------------------------------------------------------------------------------
    def _stage_pnet(self, images: torch.Tensor, min_face: float) -> tuple[np.ndarray, np.ndarray]:
        b, _, h, w = images.shape
        all_idx, all_boxes, all_scores = [], [], []
        scales = pyramid_scales(h, w, min_face, self.scale_factor)
        per_call = max(1, self.pixel_budget // (math.ceil(h * scales[0]) * math.ceil(w * scales[0]))) if scales else b
        for start in range(0, b, per_call):
            level = images[start:start + per_call]
            for scale in scales:
                hs, ws = math.ceil(h * scale), math.ceil(w * scale)
                level = resize_area(level, (hs, ws))  # each scale from the previous one: the cost is geometric
                reg, prob = self.pnet(_normalise(level))
                hit = prob >= self.thresholds[0]
                bi, yy, xx = hit.nonzero(as_tuple=True)
                if bi.numel() == 0:
                    continue
                score = prob[bi, yy, xx].cpu().numpy()
                offs = reg[bi, :, yy, xx].cpu().numpy()
                grid = torch.stack([xx, yy], 1).cpu().numpy().astype(np.float64)
                q1 = np.floor((2 * grid + 1) / scale)
                q2 = np.floor((2 * grid + 12) / scale)
                bx = np.concatenate([q1, q2, offs], axis=1)
                img = bi.cpu().numpy() + start
                keep = nms(bx[:, :4], score, 0.5, groups=img)
                all_idx.append(img[keep]); all_boxes.append(bx[keep]); all_scores.append(score[keep])
        if not all_idx:
            return np.zeros(0, np.int64), np.zeros((0, 5))
        idx, bx, score = np.concatenate(all_idx), np.concatenate(all_boxes), np.concatenate(all_scores)
        keep = nms(bx[:, :4], score, 0.7, groups=idx)
        idx, bx, score = idx[keep], bx[keep], score[keep]
        boxes = to_square(apply_regression(bx[:, :4], bx[:, 4:8]))
        return idx, np.concatenate([boxes, score[:, None]], axis=1)

    # -- stages 2 and 3 --------------------------------------------------------------------------------------------
    def _run_patches(self, images: torch.Tensor, idx: np.ndarray, boxes: np.ndarray, net, size: int):
        """Crop every box to size x size and run ``net`` in chunks; returns the net's outputs as numpy arrays.
        Chunks are padded to a power of two patches (at least 8): the nets then see a handful of batch shapes,
        so oneDNN's per-shape primitive cache stays small instead of growing with every new face count."""
        outs = []
        per_call = max(1, self.patch_batch * 24 * 24 // (size * size))  # equal pixels per call for R- and O-Net
        for s in range(0, len(idx), per_call):
            bx = np.floor(boxes[s:s + per_call, :4])
            n = len(bx)
            patches = warp_patches(images, torch.from_numpy(idx[s:s + per_call]),
                                   box_crop_affine(bx, size), (size, size))
            padded = min(max(8, 1 << (n - 1).bit_length()), max(per_call, n))
            if padded > n:
                patches = torch.cat([patches, patches.new_zeros((padded - n, *patches.shape[1:]))])
            res = net(_normalise(patches))
            outs.append([r[:n].float().cpu().numpy() for r in res])
        return [np.concatenate(parts) for parts in zip(*outs)]

    def _stage_refine(self, images, idx, boxes, net, size, threshold):
        if len(idx) == 0:
            return idx, boxes, None
        reg, score = self._run_patches(images, idx, boxes, net, size)
        keep = score >= threshold
        idx, boxes, reg, score = idx[keep], np.floor(boxes[keep, :4]), reg[keep], score[keep]
        k = nms(boxes, score, 0.7, groups=idx)
        idx, boxes, reg, score = idx[k], boxes[k], reg[k], score[k]
        boxes = to_square(apply_regression(boxes, reg))
        return idx, np.concatenate([boxes, score[:, None]], axis=1), score

    def _stage_output(self, images, idx, boxes):
        if len(idx) == 0:
            return idx, np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        reg, marks, score = self._run_patches(images, idx, boxes, self.onet, 48)
        keep = score >= self.thresholds[2]
        idx = idx[keep]
        boxes, score, lm = self._onet_decode(boxes[keep, :4], reg[keep], marks[keep], score[keep])
        k = nms(boxes, score, 0.7, method="min", groups=idx)
        return idx[k], boxes[k], score[k], lm[k]

    @staticmethod
    def _onet_decode(boxes, reg, marks, score):
        """O-Net outputs -> (boxes, scores, landmarks (n,5,2)) in the detection image's pixels."""
        boxes = np.floor(boxes)
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        lm = np.stack([w * marks[:, 0:5] + boxes[:, 0:1] - 1, h * marks[:, 5:10] + boxes[:, 1:2] - 1], axis=2)
        return apply_regression(boxes, reg), score, lm

    @torch.inference_mode()
    def refine(self, frame_hwc: np.ndarray, boxes_xyxy: np.ndarray) -> Detections:
        """O-Net alone on given boxes of one frame (e.g. where a tracker expects faces): one result per box, in
        order, with its face probability; no thresholding or NMS. This is MTCNN's last stage, which regresses
        the box and landmarks from a rough square crop, so a face that moved a little is found again."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return Detections.empty()
        # only the region around the boxes is converted and sampled: a tracked face costs a crop, not a frame
        sq = to_square(boxes)
        side = (sq[:, 2] - sq[:, 0]).max()
        h, w = frame_hwc.shape[:2]
        x0, y0 = (max(0, int(np.floor(v - side))) for v in (sq[:, 0].min(), sq[:, 1].min()))
        x1, y1 = min(w, int(np.ceil(sq[:, 2].max() + side))), min(h, int(np.ceil(sq[:, 3].max() + side)))
        if x1 <= x0 or y1 <= y0:  # every box is off the frame
            return Detections(boxes.astype(np.float32), np.zeros(len(boxes), np.float32),
                              np.zeros((len(boxes), 5, 2), np.float32))
        images, shrink = self._prepare(frame_hwc[None, y0:y1, x0:x1])
        offset = np.array([x0, y0, x0, y0], dtype=np.float64)
        squares = to_square((boxes - offset) * shrink)
        reg, marks, score = self._run_patches(ImagePyramid(images), np.zeros(len(boxes), np.int64), squares,
                                              self.onet, 48)
        out_boxes, score, lm = self._onet_decode(squares, reg, marks, score)
        return Detections((out_boxes / shrink + offset).astype(np.float32), score.astype(np.float32),
                          (lm / shrink + offset[:2]).astype(np.float32))
