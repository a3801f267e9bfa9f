"""MTCNN face detector, batched across frames and pyramid scales, on CPU or CUDA.

Pipeline (Zhang et al. 2016): image pyramid -> P-Net proposals -> NMS -> R-Net refinement -> NMS -> O-Net boxes,
5 landmarks and scores -> NMS ("min"). Pixel values are normalised as (x - 127.5) / 128, RGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facekit.detect.boxes import AreaResizer, apply_regression, crop_patches, nms, region_block, shrink_uint8, to_square
from facekit.detect.mtcnn_nets import load_mtcnn_nets


@dataclass
class Detections:
    """Faces found in one image. Coordinates in the input image's pixels."""

    boxes_xyxy: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    # (n, 5, 2) float32: left eye, right eye, nose, left mouth, right mouth (image left/right)
    landmarks_5x2: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, rows: np.ndarray) -> "Detections":
        """The faces at ``rows`` (indices or a boolean mask), in that order."""
        return Detections(self.boxes_xyxy[rows], self.scores[rows], self.landmarks_5x2[rows])

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = 0.709) -> list[float]:
    """Scales ``m * factor**k`` (``m = 12 / min_face_size``) for every level whose shorter side, truncated as the
    reference resizes, is at least 12 px (P-Net's window).

    The ``mtcnn`` package (``build_scale_pyramid``) counts ``round(log(s / 12) / -log(factor) - 1)`` levels from
    the shorter side s alone, ignoring m: at its default min face 20 that is the same pyramid (levels it adds are
    under 12 px and give P-Net no output), but with a smaller min face it stops early and misses the largest faces
    (the embedded clip's third shot at min face 16). facekit deliberately goes on to the last 12 px level."""
    side = min(height, width)
    m = 12.0 / min_face_size
    scales = []
    while int(side * m * factor ** len(scales)) >= 12:
        scales.append(m * factor ** len(scales))
    return scales


def _normalise(images_bchw: torch.Tensor, memory_format: torch.memory_format = torch.channels_last) -> torch.Tensor:
    return ((images_bchw - 127.5) * 0.0078125).contiguous(memory_format=memory_format)


MIN_BATCH = 4  # patches per R-/O-Net call at least (see _run_patches)


class MTCNN:
    """Batched MTCNN. ``detect`` takes a uint8 RGB batch (B, H, W, 3) and returns one ``Detections`` per image.

    At full resolution (``max_side`` None, or frames within it) this is the ``mtcnn`` package's pipeline (the
    reference implementation of these weights, ipazc/mtcnn 1.0) step for step;
    tests/detect/test_mtcnn_reference.py holds it to that package's own outputs. Per stage, as the reference does it:

    - P-Net on every pyramid level, each level an exact area resize of the image (``AreaResizer``); a window
      (x, y) of the output map is the box ``[2x + 1, 2y + 1, 2x + 12, 2y + 12]`` moved by the regression times
      11 (in level pixels), divided by the scale; NMS 0.5 per level, 0.7 over all levels; boxes squared;
    - R-Net and O-Net on 24 / 48 px patches sampled like ``tf.image.crop_and_resize`` (``crop_patches``); boxes
      moved by the regression in widths ``x2 - x1 + 1``; O-Net landmarks placed in the box it was given; NMS 0.7
      (R-Net: union, squared after; O-Net: over the smaller box);
    - thresholds are strict (score > t); NMS is the reference's: a box goes when any higher-scored box overlaps it
      by more than the threshold (``nms``); boxes are clipped to the image at the end (landmarks are not).

    ``max_side``: frames whose longer side exceeds it run P-Net and R-Net shrunk by the smallest integer factor
    that brings them to at most ``max_side``; O-Net then runs on the full-resolution frame (a speed trick; its
    cost in landmark error is measured in the README). ``pixel_budget`` bounds the pixels of one P-Net forward
    (memory), ``patch_batch`` the 24 px crops of one R-Net call (O-Net gets as many pixels: a quarter as many
    48 px crops), so memory does not depend on how many faces a frame has.
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

    def _prepare(self, frames_bhwc: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, int]:
        """uint8 (B, H, W, 3) -> float (B, 3, h, w) on the device, shrunk by an integer factor k to ``max_side``;
        returns (images, k)."""
        if isinstance(frames_bhwc, np.ndarray) and not frames_bhwc.flags.writeable:
            frames_bhwc = frames_bhwc.copy()
        frames = torch.as_tensor(frames_bhwc).to(self.device)
        h, w = frames.shape[1:3]
        if self.max_side and max(h, w) > self.max_side:
            k = math.ceil(max(h, w) / self.max_side)  # an integer average pool: exact area resize, and fast
            return shrink_uint8(frames, k), k
        return frames.permute(0, 3, 1, 2).float(), 1

    @torch.inference_mode()
    def detect(self, frames_bhwc: np.ndarray | torch.Tensor) -> list[Detections]:
        """Full MTCNN on a batch (B, H, W, 3) or one image (H, W, 3) of uint8 RGB; one ``Detections`` per image."""
        if frames_bhwc.ndim == 3:
            frames_bhwc = frames_bhwc[None]
        if len(frames_bhwc) == 0:
            return []
        images, k = self._prepare(frames_bhwc)
        idx, boxes = self._stage_pnet(images, max(12.0, self.min_face_size / k))
        idx, boxes = self._stage_rnet(images, idx, boxes)
        del images
        frames = [np.asarray(f) for f in frames_bhwc]
        found = self.refine_many(frames, idx, boxes * k, square=False)  # shrunk -> frame pixels: edges scale by k
        out = []
        for i, frame in enumerate(frames):
            d = self._stage_onet(found, idx == i)
            h, w = frame.shape[:2]
            d.boxes_xyxy[:, 0::2] = np.clip(d.boxes_xyxy[:, 0::2], 0, w - 1)  # the reference's fit_to_image
            d.boxes_xyxy[:, 1::2] = np.clip(d.boxes_xyxy[:, 1::2], 0, h - 1)
            out.append(d)
        return out

    # -- stage 1 ---------------------------------------------------------------------------------------------------
    def _stage_pnet(self, images: torch.Tensor, min_face: float) -> tuple[np.ndarray, np.ndarray]:
        """Proposals: (image index (n,), squared boxes (n, 4)) in the pixels of ``images``."""
        b, _, h, w = images.shape
        scales = pyramid_scales(h, w, min_face, self.scale_factor)
        if not scales:
            return np.zeros(0, np.int64), np.zeros((0, 4))
        all_idx, all_boxes, all_scores = [], [], []
        per_call = max(1, self.pixel_budget // (int(h * scales[0]) * int(w * scales[0])))
        for start in range(0, b, per_call):
            # the running sums are faster over NCHW planes (the same bits); P-Net gets each level channels-last
            area = AreaResizer(_normalise(images[start:start + per_call], torch.contiguous_format))
            for scale in scales:
                features = self.pnet.features(area.resize(int(h * scale), int(w * scale)).contiguous(
                    memory_format=torch.channels_last))
                prob = self.pnet.probability(features)
                bi, yy, xx = (prob > self.thresholds[0]).nonzero(as_tuple=True)
                if bi.numel() == 0:
                    continue
                score = prob[bi, yy, xx].double().cpu().numpy()
                # the regression only where a window passed (the same bits as the whole map's)
                offs = self.pnet.regression_at(features, bi, yy, xx).double().cpu().numpy() * 11.0
                corner = 2.0 * torch.stack([xx, yy, xx, yy], 1).cpu().numpy() + [1, 1, 12, 12]
                bx = (corner + offs) / scale
                img = bi.cpu().numpy() + start
                keep = nms(bx, score, 0.5, groups=img)
                all_idx.append(img[keep]), all_boxes.append(bx[keep]), all_scores.append(score[keep])
        if not all_idx:
            return np.zeros(0, np.int64), np.zeros((0, 4))
        idx, bx, score = np.concatenate(all_idx), np.concatenate(all_boxes), np.concatenate(all_scores)
        keep = nms(bx, score, 0.7, groups=idx)
        return idx[keep], to_square(bx[keep])

    # -- stages 2 and 3 --------------------------------------------------------------------------------------------
    def _run_patches(self, images: torch.Tensor, idx: np.ndarray, boxes: np.ndarray, net, size: int,
                     frame_hw: tuple[int, int] | None = None, offsets_xy: np.ndarray | None = None):
        """Crop every box to size x size (``crop_patches``) and run ``net`` in chunks; the net's outputs as numpy.
        Chunks are padded to a power of two patches, at least 4: the nets then see a handful of batch shapes, so
        oneDNN's per-shape primitive cache stays small instead of growing with every new face count; and from 4
        patches up a patch's outputs are the same bits whatever the batch (1 or 2 patches take other kernels:
        another last bit). 4, not 8: a tracked talking head costs O-Net half as much per frame.
        ``offsets_xy`` (n, 2): where box i's image starts in its frame (``crop_patches``)."""
        outs = []
        per_call = max(1, self.patch_batch * 24 * 24 // (size * size))  # equal pixels per call for R- and O-Net
        for s in range(0, len(idx), per_call):
            n = len(idx[s:s + per_call])
            patches = crop_patches(images, torch.from_numpy(idx[s:s + per_call]), boxes[s:s + per_call], size,
                                   frame_hw, None if offsets_xy is None else offsets_xy[s:s + per_call])
            padded = min(max(MIN_BATCH, 1 << (n - 1).bit_length()), max(per_call, n))
            if padded > n:
                patches = torch.cat([patches, patches.new_zeros((padded - n, *patches.shape[1:]))])
            res = net(_normalise(patches))
            outs.append([r[:n].double().cpu().numpy() for r in res])
        return [np.concatenate(parts) for parts in zip(*outs)]

    def _stage_rnet(self, images: torch.Tensor, idx: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(idx) == 0:
            return idx, boxes
        reg, score = self._run_patches(images, idx, boxes, self.rnet, 24)
        boxes = apply_regression(boxes, reg)
        keep = score > self.thresholds[1]
        idx, boxes, score = idx[keep], boxes[keep], score[keep]
        k = nms(boxes, score, 0.7, groups=idx)
        return idx[k], to_square(boxes[k])

    def _stage_onet(self, found: Detections, rows: np.ndarray) -> Detections:
        """One frame's O-Net results (``rows`` of ``found``), thresholded and suppressed (NMS over the smaller box)."""
        d = found.select(rows)
        keep = np.flatnonzero(d.scores > self.thresholds[2])
        return d.select(keep[nms(d.boxes_xyxy[keep], d.scores[keep], 0.7, method="min")])

    @staticmethod
    def _onet_decode(boxes: np.ndarray, reg: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net outputs -> (boxes (n, 4), landmarks (n, 5, 2)); landmarks are placed in the box O-Net was given
        (``x1 - 1 + w * m`` with w = x2 - x1 + 1, as the reference), the box is moved by the regression."""
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        lm = np.stack([w * marks[:, 0:5] + boxes[:, 0:1] - 1, h * marks[:, 5:10] + boxes[:, 1:2] - 1], axis=2)
        return apply_regression(boxes, reg), lm

    def refine(self, frame_hwc: np.ndarray, boxes_xyxy: np.ndarray, square: bool = True) -> Detections:
        """O-Net alone on given boxes of one frame (e.g. where a tracker expects faces): one result per box, in
        order, with its face probability; no thresholding or NMS. This is MTCNN's last stage, which regresses
        the box and landmarks from a rough square crop, so a face that moved a little is found again.
        ``square``: make the boxes square first (O-Net's input; detect's proposals are square already)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        return self.refine_many([frame_hwc], np.zeros(len(boxes), np.int64), boxes, square)

    @torch.inference_mode()
    def refine_many(self, frames_hwc: Sequence[np.ndarray], frame_index: np.ndarray, boxes_xyxy: np.ndarray,
                    square: bool = True) -> Detections:
        """``refine`` for boxes on several frames of one size (box i on ``frames_hwc[frame_index[i]]``) in one O-Net
        pass: one result per box, in order, each the same bits as ``refine`` on its frame alone. Only the region
        the patches of a frame sample is copied (as uint8): a tracked face costs a crop, not a frame."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        frame_index = np.asarray(frame_index, np.int64)
        if len(boxes) == 0:
            return Detections.empty()
        sq = to_square(boxes) if square else boxes
        h, w = frames_hwc[0].shape[:2]
        used = np.unique(frame_index)
        regions = np.zeros((len(used), 4), np.int64)  # per used frame: the region its boxes sample, x0 y0 x1 y1
        for r, f in enumerate(used):
            b = sq[frame_index == f]
            regions[r] = (max(0, int(np.floor(b[:, 0].min())) - 1), max(0, int(np.floor(b[:, 1].min())) - 1),
                          min(w, int(np.ceil(b[:, 2].max())) + 2), min(h, int(np.ceil(b[:, 3].max())) + 2))
        empty = (regions[:, 2] <= regions[:, 0]) | (regions[:, 3] <= regions[:, 1])  # every box is off the frame
        regions[empty] = (0, 0, 1, 1)  # a pixel to sample from; those boxes get probability 0 below
        block = region_block(frames_hwc, used, regions)
        slot = np.searchsorted(used, frame_index)
        images = torch.from_numpy(block).to(self.device).permute(0, 3, 1, 2)  # uint8: sampled without a float copy
        reg, marks, score = self._run_patches(images, slot, sq, self.onet, 48, (h, w), regions[slot, :2])
        out_boxes, lm = self._onet_decode(sq, reg, marks)
        off = empty[slot]
        out_boxes[off], lm[off], score[off] = boxes[off], 0.0, 0.0
        return Detections(out_boxes.astype(np.float32), score.astype(np.float32), lm.astype(np.float32))
