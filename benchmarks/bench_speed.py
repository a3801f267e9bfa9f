"""Speed and memory of the benchmark protocols from cached features, at the real protocol sizes; and, with
``--extraction``, the images/s of feature extraction for a first and a second model.

    python benchmarks/bench_speed.py [--quick]
    python benchmarks/bench_speed.py --extraction [--images 2000]

``--extraction``: an IJB-C-shaped official layout (1280x720 frames as IJB-C's video frames, one face each pasted
from the embedded sample clip's people at a random place and scale, NIST boxes around it; 200 subjects, galleries
G1 / G2, mixed probes) is scored by `facekit bench ijb` with an insightface MobileFaceNet (random weights: the
speed is the same), then by a second checkpoint of it on the same images and cache. The first run reads,
detects inside the box (O-Net) and aligns every image; the second reads the crops the first cached
(`facekit.embed.crop_cache`) and runs only its network. Prints images/s of both and their ratio (target: the
second at least 5x the first on CPU) and the hours full IJB-C (469,375 images) and YTF (621,126 frames) would
take at the first model's rate.

Generated features (512-d, unit) and protocol arrays of the real sizes: YTF 5,000 pairs over 3,425 videos;
IJB-C 1:N with 3,531 gallery and 19,593 probe templates built from 140,000 media (470,000 images); IJB-C 1:1
with 15,658,489 template pairs. Prints seconds per stage and the peak resident memory (VmHWM). ``--quick``
divides the sizes by 10. Targets (issue 6): YTF < 1 s, 1:N < 60 s, 1:1 < 120 s, all < 4 GB.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from common import peak_rss_mb  # benchmarks/common.py

from facekit.bench import ijb
from facekit.metrics import kfold_accuracy, l2_normalise, open_set_identification, pair_scores, roc, tar_at_far


def extraction(images: int) -> None:
    import shutil
    import tempfile
    from pathlib import Path

    import torch

    import facekit
    from facekit.cli.main import main as facekit_main
    from facekit.datasets.layouts import write_ijb_official
    from facekit.models import build_backbone

    rng = np.random.default_rng(0)
    video = facekit.sample_video()
    faces = []
    for index in range(0, 90, 9):  # the sample clip's people
        frame = facekit.read_frame(video, index)
        d = facekit.detect_faces(frame)
        for x0, y0, x1, y1 in d.boxes_xyxy.astype(int):
            pad = (x1 - x0) // 4
            faces.append(frame[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad])
    from PIL import Image

    subjects, per = 200, max(2, images // 200)
    files, rows = {}, {}
    backdrop = np.asarray(Image.fromarray(rng.integers(0, 255, (18, 32, 3), dtype=np.uint8)).resize((1280, 720)))
    for s in range(subjects):
        for k in range(per):
            face = faces[(s + k) % len(faces)]
            side = int(rng.integers(90, 260))
            patch = np.asarray(Image.fromarray(face).resize((side, side)))
            x, y = int(rng.integers(0, 1280 - side)), int(rng.integers(0, 720 - side))
            img = backdrop.copy()
            img[y:y + side, x:x + side] = patch
            name = f"frames/{s}_{k}.jpg"
            files[name] = img
            pad = side // 8  # NIST's box: the face with a little of its surroundings
            rows[(s, k)] = (name, x + pad, y + pad, side - 2 * pad, side - 2 * pad)
    g1, g2, probes, tid = [], [], [], 0
    for s in range(subjects):
        tid += 1
        (g1 if s < subjects // 2 else g2).extend((tid, s, *rows[(s, k)][:1], 0, *rows[(s, k)][1:])
                                                 for k in range(per // 2))
        tid += 1
        probes.extend((tid, s, *rows[(s, k)][:1], 0, *rows[(s, k)][1:]) for k in range(per // 2, per))
    matches = [(a, a + 1) for a in range(1, tid, 2)] + [(a, a + 3) for a in range(1, tid - 3, 2)]
    tmp = Path(tempfile.mkdtemp())
    try:
        img_root, proto = write_ijb_official(tmp / "ijbc", "IJBC", files, [g1, g2], probes, matches)
        n = len(files)
        rates = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            ckpt = tmp / f"mbf{seed}.pth"
            torch.save(build_backbone("mbf", num_features=512).eval().state_dict(), ckpt)
            out = tmp / f"reports{seed}"
            facekit_main(["bench", "ijb", "--root", str(proto), "--images", str(img_root), "--model", f"mbf:{ckpt}",
                          "--cache", str(tmp / "cache"), "--out", str(out), "--device", "cpu", "-q"])
            report = json.loads(next(out.iterdir()).joinpath("report.json").read_text())
            rates.append(n / report["timings_sec"]["features"])  # the feature stage: reading, cropping, the network
        print(json.dumps({"images": n, "first_model_images_per_s": round(rates[0], 1),
                          "second_model_images_per_s": round(rates[1], 1), "ratio": round(rates[1] / rates[0], 2),
                          "full_ijbc_hours_first_model": round(469_375 / rates[0] / 3600, 1),
                          "full_ytf_hours_first_model": round(621_126 / rates[0] / 3600, 1)}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if "--extraction" in sys.argv:
        extraction(int(sys.argv[sys.argv.index("--images") + 1]) if "--images" in sys.argv else 2000)
        return
    q = 10 if "--quick" in sys.argv else 1
    rng = np.random.default_rng(0)
    d = 512
    out = {}

    # YTF: video features from 40 frame features each (N=10, n_avg=4), 5,000 pairs, 10 folds
    frames = rng.normal(size=(3425, 40, d)).astype(np.float32)
    t = time.perf_counter()
    vids = l2_normalise(l2_normalise(frames).reshape(3425, 4, 10, d).mean(2).mean(1))
    a, b = rng.integers(0, 3425, 5000), rng.integers(0, 3425, 5000)
    dist = np.linalg.norm(vids[a] - vids[b], axis=1)
    kfold_accuracy(dist, rng.random(5000) < 0.5, np.repeat(np.arange(10), 500))
    out["ytf_5000_pairs_sec"] = round(time.perf_counter() - t, 3)
    del frames

    # IJB-C 1:N: templates from media-averaged image features
    n_img, n_media, n_subj = 470_000 // q, 140_000 // q, 3531 // q
    n_gal, n_probe = 3531 // q, 19_593 // q
    t = time.perf_counter()
    centres = l2_normalise(rng.normal(size=(n_subj + 500, d)).astype(np.float32))
    media_template = rng.integers(0, n_gal + n_probe, n_media)
    media_template[: n_gal + n_probe] = np.arange(n_gal + n_probe)  # every template has a media
    template_subject = np.r_[np.arange(n_gal), rng.integers(0, n_subj + 500, n_probe)]
    img_media = np.r_[np.arange(n_media), rng.integers(0, n_media, n_img - n_media)]
    img_t = media_template[img_media]
    feats = centres[template_subject[img_t]] + 0.05 * rng.normal(size=(n_img, d)).astype(np.float32)
    out["generate_sec"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    ids, tf = ijb.template_features(feats, img_t, img_media)
    del feats
    out["ijbc_templates_sec"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    res = open_set_identification(tf[n_gal:], template_subject[n_gal:], tf[:n_gal], template_subject[:n_gal])
    out["ijbc_1N_sec"] = round(time.perf_counter() - t, 2)
    out["ijbc_1N_rank1"] = round(res.rank(1), 4)

    # IJB-C 1:1: 15.7 M template pairs, scored in chunks, ROC by scikit-learn
    n_pairs = 15_658_489 // q
    t = time.perf_counter()
    pa, pb = rng.integers(0, len(tf), n_pairs), rng.integers(0, len(tf), n_pairs)
    scores = pair_scores(tf, pa, pb)
    labels = template_subject[pa] == template_subject[pb]
    fpr, tpr, _ = roc(labels, scores)
    tar_at_far(fpr, tpr)
    out["ijbc_11_sec"] = round(time.perf_counter() - t, 2)
    out["ijbc_11_pairs"] = n_pairs
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
