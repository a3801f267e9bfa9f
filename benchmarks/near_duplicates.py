"""What ``curate clean``'s near-duplicate rule keeps on real talking heads, per threshold.

    python benchmarks/near_duplicates.py [SEQUENCES_ROOT] [--model SPEC]

Default root: the 10 talking-head clips of ../shared/data (video-retalking 1-5, LivePortrait d3/d12/d18/d19/d20)
extracted with the default settings into out/bench-talking-heads (reused when there). Faces are embedded with the
default embedder (dlib's ResNet in PyTorch). For each near-duplicate threshold, the rule alone (no outliers):
faces kept, the share kept, the median per sequence, and how much head-pose variety survives: the spread
(p95 - p5) of yaw and of roll of the kept faces as a share of all faces' spread (median over sequences), and the
largest yaw any removed face is from its nearest kept face in the sequence (the pose a sequence no longer shows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facekit.curate import steps
from facekit.curate.embeddings import embed_crops
from facekit.embed.extractors import default_embedder, load_extractor
from facekit.manifests import read_manifest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CLIPS = [*(f"video-retalking/examples/face/{i}.mp4" for i in range(1, 6)),
         *(f"LivePortrait/assets/examples/driving/d{i}.mp4" for i in (3, 12, 18, 19, 20))]
THRESHOLDS = [0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, None]


def talking_heads_root(out: Path) -> Path:
    from facekit.pipeline.extract_sequences import extract_sequences

    if not (out / "lineage.json").is_file():
        missing = [c for c in CLIPS if not (SHARED / c).is_file()]
        if missing:
            sys.exit(f"{SHARED / missing[0]}: not found (give a sequences root instead)")
        extract_sequences([SHARED / c for c in CLIPS], out, progress=False)
    return out


def spread(x: np.ndarray) -> float:
    return float(np.percentile(x, 95) - np.percentile(x, 5)) if len(x) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    root = args.root or talking_heads_root(ROOT / "out" / "bench-talking-heads")
    faces = read_manifest(root, "faces").sort_values(["sequence_id", "frame_index"]).reset_index(drop=True)
    ext = load_extractor(args.model or default_embedder())
    feats = embed_crops(root, faces["crop_path"].tolist(), ext, progress=False)
    groups = faces["sequence_id"].to_numpy()
    yaw, roll = faces["yaw"].to_numpy(), faces["roll_deg"].to_numpy()
    print(f"{root}: {len(faces)} faces in {faces['sequence_id'].nunique()} sequences; model {ext.name}")
    print(f"{'threshold':>10} {'kept':>6} {'share':>6} {'median/seq':>10} {'yaw spread':>10} {'roll spread':>11} "
          f"{'max yaw gap':>11}")
    for t in THRESHOLDS:
        twin = steps.near_duplicates(feats, groups, t)[0] if t is not None else np.full(len(faces), -1)
        kept = twin < 0
        ys, rs, per_seq, gaps = [], [], [], [0.0]
        for g in np.unique(groups):
            m = groups == g
            k = m & kept
            per_seq.append(k.sum())
            ys.append(spread(yaw[k]) / max(spread(yaw[m]), 1e-9))
            rs.append(spread(roll[k]) / max(spread(roll[m]), 1e-9))
            gone = np.flatnonzero(m & ~kept)
            if len(gone):
                gaps.append(float(np.abs(yaw[gone][:, None] - yaw[k][None, :]).min(1).max()))
        name = "off" if t is None else f"{t:g}"
        print(f"{name:>10} {kept.sum():>6} {kept.mean():>6.1%} {np.median(per_seq):>10.0f} {np.median(ys):>10.1%} "
              f"{np.median(rs):>11.1%} {max(gaps):>11.3f}")


if __name__ == "__main__":
    main()
