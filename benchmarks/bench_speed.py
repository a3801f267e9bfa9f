"""Speed and memory of the benchmark protocols from cached features, at the real protocol sizes.

    python benchmarks/bench_speed.py [--quick]

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


def main() -> None:
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
