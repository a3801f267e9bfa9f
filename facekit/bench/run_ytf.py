"""``facekit bench ytf``: YouTube Faces with the DAN protocol (N, n_avg), SeqFace's all-frames protocol or an
aggregator, clean or motion-blurred; reads with ``bench.ytf``, writes the report."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from facekit.bench import ytf
from facekit.bench.common import check_threshold_rule, roc_plots, verification_accuracy, worst_pairs
from facekit.bench.paper_numbers import PAPER_PROTOCOL, SEQFACE_TABLE2, YTF_BLUR_TABLE4, YTF_DAN_TABLE1
from facekit.bench.report import md_table, new_report_dir, write_report
from facekit.bench.source import FeatureSource
from facekit.datasets.demo import is_demo_data
from facekit.embed.features import (
    crop_report,
    read_image,
)
from facekit.errors import InputError
from facekit.fsutil import jsonable
from facekit.metrics import (
    l2_normalise,
    squared_distances,
)
from facekit.provenance import fingerprint_files, fingerprint_strings
from facekit.transforms.blur import blurred_positions, motion_blur

BLUR_KEY = "blur2-"  # cache key prefix of blurred crops; bumped when the kernel changes (2: odd, centred kernels)


def _blur_crop(crop: np.ndarray, size: int, angle: float) -> np.ndarray:
    x = torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None]
    return motion_blur(x, size, angle)[0].permute(1, 2, 0).numpy()


@dataclass
class YTFSettings:
    root: Path  # aligned_images_DB
    splits: Path
    n: int = 10
    n_avg: int = 4
    method: str = "avg"  # avg | aggregator
    protocol: str = "dan"  # dan | seqface
    blur: int = 0  # motion blur kernel size applied to 9 of every 10 sampled frames (0: none)
    seed: int = 0
    full_protocol: bool = True  # False only for small fixtures: accept fewer than 5,000 pairs
    threshold: str = "kfold"  # kfold (insightface / FaceNet) | best-on-all (SeqFace's evaluate.py)


def run_ytf(s: YTFSettings, source: FeatureSource, out_root: Path) -> tuple[Path, dict]:
    t0 = time.perf_counter()
    if s.method not in ("avg", "aggregator") or s.protocol not in ("dan", "seqface"):
        raise InputError(f"unknown --method {s.method!r} / --protocol {s.protocol!r} (avg|aggregator, dan|seqface)")
    if s.method == "aggregator" and s.protocol != "dan":
        raise InputError("--method aggregator runs the DAN protocol (--protocol dan)")
    if s.blur and source.model is None:
        raise InputError("--blur needs --model: precomputed features cannot be blurred")
    check_threshold_rule(s.threshold)
    pairs = ytf.read_splits(s.splits, expect_full=s.full_protocol)
    videos = pairs.videos
    frames = {v: ytf.video_frames(s.root, v) for v in videos}
    keys: dict[str, list[str]] = {}
    for v in videos:
        fs = frames[v]
        # DAN: N * n_avg evenly spaced frames; SeqFace: every frame. --blur hits 9 of every 10 of them.
        idx = ytf.dan_sample(len(fs), s.n, s.n_avg).reshape(-1) if s.protocol == "dan" else np.arange(len(fs))
        blurred = blurred_positions(len(idx)) if s.blur else np.zeros(len(idx), bool)
        keys[v] = [_ytf_key(s, fs[i], s.root, b, v, j) for j, (i, b) in enumerate(zip(idx, blurred))]
    flat = [k for v in videos for k in keys[v]]
    t_protocol = time.perf_counter() - t0

    def frame_file(key: str) -> Path:
        return Path(s.root) / key.partition("|")[0]

    def load(key: str, cropper=None) -> np.ndarray:
        blur = key.partition("|")[2]
        crop = (cropper or source.cropper)(read_image(frame_file(key)))
        if blur:
            size, angle = blur.removeprefix(BLUR_KEY).split("@")
            crop = _blur_crop(crop, int(size), float(angle))
        return crop

    t1 = time.perf_counter()
    if s.method == "aggregator":  # every N consecutive sampled frames -> one aggregated face -> one feature
        sets = [keys[v][g * s.n:(g + 1) * s.n] for v in videos for g in range(s.n_avg)]
        feats = source.get_sets(sets, load, "YTF sets (aggregator)", frame_file)
    else:
        feats = source.get(flat, load, "YTF frames", frame_file)
    t_feats = time.perf_counter() - t1
    t2 = time.perf_counter()
    video_feat, pos = {}, 0
    for v in videos:
        if s.method == "aggregator":
            video_feat[v] = ytf.dan_video_feature(l2_normalise(feats[pos:pos + s.n_avg]))
            pos += s.n_avg
            continue
        f = feats[pos:pos + len(keys[v])]
        pos += len(keys[v])
        if s.protocol == "dan":
            groups = ytf.avg_group_features(l2_normalise(f), s.n, s.n_avg)
            video_feat[v] = ytf.dan_video_feature(groups)
        else:
            video_feat[v] = ytf.seqface_video_feature(f)
    a = np.stack([video_feat[v] for v in pairs.video_a])
    b = np.stack([video_feat[v] for v in pairs.video_b])
    accuracy, convention = verification_accuracy(a, b, pairs.same, pairs.split, s.threshold)
    t_metric = time.perf_counter() - t2
    metrics = {**accuracy, "pairs": int(len(a)), "videos": len(videos), "frames_used": len(flat),
               "features_computed": source.computed}
    out = new_report_dir(out_root, "ytf")
    n_col, navg_col = (s.n, s.n_avg) if s.protocol == "dan" else ("all", "-")
    rows = [[f"facekit ({s.method}, {s.protocol}, {s.threshold})", n_col, navg_col, s.blur or "-",
             100 * metrics["accuracy_mean"], 100 * metrics["accuracy_std"]]]
    demo = is_demo_data([s.splits])
    paper = None if demo else _ytf_paper(s)
    if paper is not None:
        rows.append([f"{paper[0]}, {paper[2]}", n_col, navg_col, s.blur or "-", paper[1], None])
    video_rule = ("DAN: N x n_avg evenly spaced frames, the mean of each group of N, the mean of the n_avg groups, "
                  "L2-normalised" if s.protocol == "dan" else
                  "SeqFace: every frame's feature L2-normalised, summed over the video, L2-normalised")
    md = (f"# YTF verification ({s.protocol.upper()} protocol)\n\n"
          + md_table(["method", "N", "n_avg", "blur", "accuracy %", "std %"], rows)
          + f"\n\nVideo feature: {video_rule}. Accuracy: {convention} Folds = the official splits. "
            + (f"Motion blur: kernel {s.blur}, 9 of every 10 frames used, seeded directions (seed {s.seed}). "
               if s.blur else "")
            + f"Features: {source.fingerprint}.\n")
    roc_plots(out, "YTF", pairs.same, -squared_distances(a, b))
    used = jsonable(asdict(s))
    if s.protocol == "seqface":  # every frame is used: N and n_avg play no part
        used.update(n=None, n_avg=None)
    if not s.blur:
        used.update(seed=None)
    write_report(out, "ytf", metrics, {**used, "features": source.fingerprint},
                 {"splits": fingerprint_files([s.splits]), "frames": fingerprint_strings(flat),
                  "features": source.fingerprint},
                 {"protocol": t_protocol, "features": t_feats, "metrics": t_metric}, md, demo,
                 crops=crop_report(source.croppers(), source.computed),
                 worst=worst_pairs(pairs.video_a, pairs.video_b, pairs.same, (a * b).sum(1)))
    return out, metrics


def _ytf_key(s: YTFSettings, frame: Path, root: Path, blurred: bool, video: str, position: int) -> str:
    rel = str(frame.relative_to(root))
    if not blurred:
        return rel
    h = hashlib.sha256(f"{s.seed}|{video}|{position}".encode()).digest()
    angle = int.from_bytes(h[:4], "little") % 180  # a fixed pseudo-random direction per (seed, video, position)
    return f"{rel}|{BLUR_KEY}{s.blur}@{angle}"


def _ytf_paper(s: YTFSettings) -> tuple[str, float, str] | None:
    """(row label, published accuracy %, how the paper scored it): only where the setting is the paper's."""
    if s.protocol == "seqface":
        if s.blur:
            return None
        return ("SeqFace ResNet-64 (paper Table 2)", SEQFACE_TABLE2["YTF"]["ResNet-64"],
                PAPER_PROTOCOL["seqface"])
    if s.blur:
        v = YTF_BLUR_TABLE4[s.method].get(s.blur) if (s.n, s.n_avg) == (10, 4) else None
        return (f"paper Table 4 ({s.method})", v, PAPER_PROTOCOL["dan"]) if v else None
    v = YTF_DAN_TABLE1[s.method].get((s.n, s.n_avg))
    return (f"paper Table 1 ({s.method})", v, PAPER_PROTOCOL["dan"]) if v else None
