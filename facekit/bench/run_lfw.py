"""``facekit bench lfw``: LFW ``pairs.txt`` or an insightface ``.bin`` (read with ``datasets.lfw``), 10-fold
accuracy, the report."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facekit.align.templates import get_template
from facekit.align.warp import warp_crops
from facekit.bench.common import check_threshold_rule, roc_plots, verification_accuracy, worst_pairs
from facekit.bench.paper_numbers import PAPER_PROTOCOL, SEQFACE_TABLE2
from facekit.bench.report import md_table, new_report_dir, write_report
from facekit.bench.source import FeatureSource
from facekit.datasets import lfw
from facekit.datasets.demo import is_demo_data
from facekit.embed.features import (
    crop_report,
    read_image,
)
from facekit.errors import InputError
from facekit.metrics import (
    l2_normalise,
    squared_distances,
)
from facekit.provenance import fingerprint_files


def run_lfw(root: Path | None, pairs_file: Path | None, bin_file: Path | None, source: FeatureSource,
            out_root: Path, threshold: str = "kfold", detect: bool = False) -> tuple[Path, dict]:
    """LFW (``pairs.txt`` + image tree) or an insightface ``.bin`` (LFW, CFP-FP, AgeDB-30 ...). A ``.bin`` holds
    aligned ArcFace chips: they are re-aligned to the model's template (a resize for an arcface model), unless
    ``detect`` asks for MTCNN on them. The report is named after the set; published figures only for LFW."""
    t0 = time.perf_counter()
    set_name = bin_file.stem if bin_file is not None else "LFW"
    check_threshold_rule(threshold)
    if bin_file is not None:
        images, same = lfw.read_bin(bin_file)
        fold = np.arange(len(same)) * 10 // max(len(same), 1)  # 10 contiguous folds, as insightface does
        keys = [f"{bin_file.name}#{i}" + ("|detect" if detect else "") for i in range(len(images))]
        if source.model is None:
            raise InputError("--bin needs --model (its images have no paths to look features up by)")

        def load(key: str) -> np.ndarray:
            i = int(key.split("|")[0].rsplit("#", 1)[1])
            with Image.open(io.BytesIO(images[i])) as im:
                chip = np.asarray(im.convert("RGB"))
            if detect:
                return source.cropper(chip)
            source.cropper.count("aligned")
            return warp_crops(chip[None], get_template("arcface", chip.shape[0]), source.cropper.template)[0]
        data_fp = fingerprint_files([bin_file])

        def file_of(key: str) -> Path:
            return bin_file
    else:
        if root is None or pairs_file is None:
            raise InputError("give --root and --pairs (LFW) or --bin (insightface .bin)")
        p = lfw.read_pairs(pairs_file)
        same, fold = p.same, p.fold
        keys = [k for ab in zip(p.image_a, p.image_b) for k in ab]

        def file_of(key: str) -> Path:
            return Path(root) / key

        def load(key: str) -> np.ndarray:
            return source.cropper(read_image(file_of(key)))
        data_fp = fingerprint_files([pairs_file])
    feats = l2_normalise(source.get(keys, load, "LFW images", file_of))
    accuracy, convention = verification_accuracy(feats[0::2], feats[1::2], same, fold, threshold)
    metrics = {**accuracy, "set": set_name, "pairs": int(len(same)), "features_computed": source.computed}
    out = new_report_dir(out_root, "lfw")
    demo = is_demo_data([bin_file or pairs_file])
    rows = [[f"facekit ({source.fingerprint}, {threshold})", 100 * metrics["accuracy_mean"],
             100 * metrics["accuracy_std"]]]
    if not demo and set_name.lower() == "lfw":  # the paper's figure is LFW's: never beside CFP-FP, AgeDB ...
        rows.append([f"SeqFace ResNet-64 (paper Table 2, LFW), {PAPER_PROTOCOL['seqface']}",
                     SEQFACE_TABLE2["LFW"]["ResNet-64"], None])
    how = ("insightface .bin: aligned ArcFace chips, " + ("faces detected by MTCNN" if detect else
           "re-aligned to the model's template") if bin_file is not None else "LFW pairs.txt: faces detected by MTCNN")
    md = (f"# {set_name} verification\n\n" + md_table(["method", "accuracy %", "std %"], rows)
          + f"\n\nImages: {how}. Accuracy: {convention}\n")
    if len(set(np.asarray(same).tolist())) == 2:
        roc_plots(out, "LFW", same, -squared_distances(feats[0::2], feats[1::2]))
    worst = worst_pairs(keys[0::2], keys[1::2], same, (feats[0::2] * feats[1::2]).sum(1))
    write_report(out, "lfw", metrics, {"root": str(root), "pairs": str(pairs_file), "bin": str(bin_file),
                                       "threshold": threshold, "detect": detect, "features": source.fingerprint},
                 {"protocol": data_fp, "features": source.fingerprint},
                 {"total": time.perf_counter() - t0}, md, demo,
                 crops=crop_report(source.croppers(), source.computed), worst=worst)
    return out, metrics
