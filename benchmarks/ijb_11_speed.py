"""IJB-C 1:1 scoring at full size: facekit's block scoring against insightface's per-pair batches, one run.

Generated data of IJB-C's shape (protocols.md): 3,531 enrolment (G1 + G2) and 19,593 probe templates, 512-d unit
features, 15,658,489 listed pairs (a random 22.6% of enrolment x probe, in enrolment order, as the official
list), 19,557 of them genuine. Both sides then run scikit-learn's ROC, as the benchmark does.

- insightface (``recognition/_evaluation_/ijb/ijb_11.py``, ``verification``): 100,000 pairs a batch,
  ``np.sum(feat1 * feat2, -1)`` on the gathered rows;
- facekit (``facekit.metrics.pair_scores``): template-similarity blocks by matrix product, listed pairs
  picked from them.

    python benchmarks/ijb_11_speed.py          # target: facekit >= 3x insightface, under 10 s, peak < 4 GB
"""

from __future__ import annotations

import time

import numpy as np
from common import peak_rss_mb  # benchmarks/common.py

from facekit.metrics import pair_scores, roc

ENROL, PROBE, PAIRS, GENUINE, DIM = 3_531, 19_593, 15_658_489, 19_557, 512


def ijbc_like(seed: int = 0):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((ENROL + PROBE, DIM), dtype=np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    keep = rng.random((ENROL, PROBE), dtype=np.float32) < PAIRS / (ENROL * PROBE)
    a, b = np.nonzero(keep)
    del keep
    labels = np.zeros(len(a), bool)
    labels[rng.choice(len(a), GENUINE, replace=False)] = True
    return feats, a.astype(np.int64), (b + ENROL).astype(np.int64), labels


def insightface_scores(feats: np.ndarray, a: np.ndarray, b: np.ndarray, batch: int = 100_000) -> np.ndarray:
    score = np.zeros(len(a), np.float32)
    for s in range(0, len(a), batch):
        f1, f2 = feats[a[s:s + batch]], feats[b[s:s + batch]]
        score[s:s + batch] = np.sum(f1 * f2, -1)
    return score


def main() -> None:
    t0 = time.perf_counter()
    feats, a, b, labels = ijbc_like()
    print(f"generated {len(a):,} pairs of {ENROL:,} x {PROBE:,} templates, d = {DIM} "
          f"({time.perf_counter() - t0:.1f} s); peak so far {peak_rss_mb():.0f} MB")
    t1 = time.perf_counter()
    ours = pair_scores(feats, a, b)
    t_ours_scores = time.perf_counter() - t1
    roc(labels, ours)
    t_ours = time.perf_counter() - t1
    peak_ours = peak_rss_mb()
    t2 = time.perf_counter()
    ref = insightface_scores(feats, a, b)
    t_ref_scores = time.perf_counter() - t2
    roc(labels, ref)
    t_ref = time.perf_counter() - t2
    print(f"insightface batches: scores {t_ref_scores:.1f} s, with ROC {t_ref:.1f} s")
    print(f"facekit blocks:      scores {t_ours_scores:.1f} s, with ROC {t_ours:.1f} s; "
          f"peak memory of the process after it: {peak_ours:.0f} MB")
    print(f"speed-up with ROC: {t_ref / t_ours:.1f}x (scores alone {t_ref_scores / t_ours_scores:.1f}x); "
          f"max |score difference| {np.abs(ours - ref).max():.1e}")


if __name__ == "__main__":
    main()
