"""``curate clusters`` at a million sequences (issue 25, item 5): time, memory and pairwise F-score.

    python benchmarks/cluster_scale.py [--centres 1000000] [--backend auto|faiss|numpy]

Generates sequence centres of planted people (128-d: a unit direction per person plus noise, 1-12 sequences a
person, same-person cosine ~0.74, strangers ~0 +- 0.09), clusters them with the function ``curate clusters``
uses (``facekit.curate.clusters.cluster_centres``, threshold 0.6, k = 32) and prints the seconds, this process's
peak resident memory, and the pairwise precision / recall / F-score against the planted people. With
``--real``, also the sequences of the 12 real clips of ../shared/data (embedded with dlib's ResNet in PyTorch):
the partition is compared with scikit-learn's average linkage over all centres at once (the method before).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import peak_rss_mb  # benchmarks/common.py

from facekit.curate.clusters import cluster_centres, pair_f_score


def planted(n: int, d: int = 128, noise: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, n // 6 + 1)
    truth = np.repeat(np.arange(len(sizes)), sizes)[:n]
    people = rng.standard_normal((len(sizes), d), dtype=np.float32)
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    x = people[truth]
    x += (noise / np.sqrt(d)) * rng.standard_normal((n, d), dtype=np.float32)
    order = rng.permutation(n)
    return x[order], truth[order]


def real_clips() -> None:
    import tempfile
    from pathlib import Path

    from fps_sampling import CLIPS, SHARED  # benchmarks/fps_sampling.py: the 12 real clips
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    from facekit.curate import steps
    from facekit.curate.embeddings import embed_crops, manifest_crops
    from facekit.curate.run import centre_sample
    from facekit.embed.extractors import default_embedder, load_extractor
    from facekit.pipeline.extract_sequences import extract_sequences

    clips = [SHARED / c for c in CLIPS]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "seqs"
        extract_sequences(clips, root, progress=False)
        rows = centre_sample(manifest_crops(root, "faces"), "sequence_id", 16)
        feats = embed_crops(root, rows["crop_path"].tolist(), load_extractor(default_embedder(), "cpu"),
                            progress=False)
        seq = rows["sequence_id"].to_numpy()
        _, centres = steps.group_centres(steps.centred(feats, steps.group_centres(feats, seq)[1].mean(0)), seq)
    for threshold in (0.4, 0.6):
        before = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=1 - threshold).fit_predict(centres)
        after, _ = cluster_centres(centres, threshold)
        print(f"real clips: {len(centres)} sequences, threshold {threshold}: {len(set(after))} clusters; same "
              f"partition as average linkage over all centres: {adjusted_rand_score(before, after) == 1.0}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--centres", type=int, default=1_000_000)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--real", action="store_true")
    args = ap.parse_args()
    x, truth = planted(args.centres)
    t = time.perf_counter()
    labels, stats = cluster_centres(x, 0.6, backend=args.backend)
    sec = time.perf_counter() - t
    f = pair_f_score(truth, labels)
    print(f"{args.centres:,} centres of {len(np.unique(truth)):,} planted people -> {len(np.unique(labels)):,} "
          f"clusters in {sec:.0f} s ({stats.backend}, k={stats.k}); peak memory {peak_rss_mb() / 1024:.2f} GB; "
          f"pairwise precision {f['precision']:.4f}, recall {f['recall']:.4f}, F-score {f['f_score']:.4f}; "
          f"{stats.components:,} components (largest {stats.largest_component}), "
          f"{stats.approximate_components} on their graph only")
    if args.real:
        real_clips()


if __name__ == "__main__":
    main()
