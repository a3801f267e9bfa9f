"""Reading a root of a million videos before and after ``facekit manifest compact`` (issue 25, item 4).

    python benchmarks/compact_scale.py [--videos 1000000] [--flush-every 8]

Generates (under a temporary folder) the manifests ``extract-sequences --flush-every 8`` leaves after 1 M videos:
125 K flush groups, each a part file of ``videos``, ``sequences`` and ``faces`` (one sequence of 4 faces per
video; the real schemas). Then times, each in this process: ``facekit manifest stats`` (``manifest_stats``), the
trainers' read of the faces table (``read_manifest`` of the columns the SeqFace loader takes), the compaction,
and both reads again. Writing the parts takes most of the run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facekit.manifests.compact import compact
from facekit.manifests.io import read_manifest
from facekit.manifests.query import manifest_stats
from facekit.manifests.schemas import DROP_REASONS, FACES, SEQUENCES, VIDEOS

FACES_PER_VIDEO = 4


def group_tables(first: int, n: int) -> dict:
    v = np.arange(first, first + n)
    vid = [f"id{i // 100:05d}/{i:07d}" for i in v]
    seq = [f"{x}#0" for x in vid]
    z = lambda dtype: np.zeros(n, dtype)  # noqa: E731
    videos = {"video_id": vid, "path": [f"{x}.mp4" for x in vid], "status": ["ok"] * n, "error": [None] * n,
              "num_frames": np.full(n, 200), "fps": np.full(n, 25.0), "duration_sec": np.full(n, 8.0),
              "width": np.full(n, 224, np.int32), "height": np.full(n, 224, np.int32), "vfr": np.zeros(n, bool),
              "num_sequences": np.ones(n, np.int32), "num_faces": np.full(n, FACES_PER_VIDEO),
              "num_detections": np.full(n, 200), **{f"dropped_{r}": z(np.int64) for r in DROP_REASONS},
              "num_shots": np.ones(n, np.int32)}
    seqs = {"sequence_id": seq, "video_id": vid, "shot_index": z(np.int32), "first_frame": z(np.int64),
            "last_frame": np.full(n, 150), "first_sec": z(float), "last_sec": np.full(n, 6.0),
            "num_faces": np.full(n, FACES_PER_VIDEO, np.int32), **{c: np.full(n, 1.0, np.float32) for c in (
                "mean_score", "mean_blur", "min_blur", "mean_face_px", "mean_abs_yaw")}}
    k = n * FACES_PER_VIDEO
    rep = lambda xs: [x for x in xs for _ in range(FACES_PER_VIDEO)]  # noqa: E731
    faces = {"sequence_id": rep(seq), "video_id": rep(vid), "frame_index": np.tile(np.arange(FACES_PER_VIDEO) * 50, n),
             "timestamp_sec": np.tile(np.arange(FACES_PER_VIDEO) * 2.0, n),
             **{c: np.full(k, 10.0, np.float32) for c in ("box_x1", "box_y1", "box_x2", "box_y2")},
             "landmarks_5x2": pa.FixedSizeListArray.from_arrays(np.zeros(k * 10, np.float32), 10),
             "score": np.full(k, 0.99, np.float32), "blur": np.full(k, 100.0, np.float32),
             "yaw": np.zeros(k, np.float32), "roll_deg": np.zeros(k, np.float32), "tracked": np.zeros(k, bool),
             "crop_path": [f"crops/{s}/{f:06d}.jpg" for s in seq for f in range(FACES_PER_VIDEO)]}
    return {VIDEOS: videos, SEQUENCES: seqs, FACES: faces}


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def reads(root: Path) -> dict[str, float]:
    stats_s, stats = timed(lambda: manifest_stats(root))
    train_s, faces = timed(lambda: read_manifest(root, "faces", columns=["sequence_id", "crop_path"]))
    assert stats["tables"]["faces"]["rows"] == len(faces)
    return {"manifest stats": stats_s, "trainers' faces read": train_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=1_000_000)
    ap.add_argument("--flush-every", type=int, default=8)
    args = ap.parse_args()
    groups = args.videos // args.flush_every
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "seqs"
        t = time.perf_counter()
        for schema in (FACES, SEQUENCES, VIDEOS):
            (root / "manifests" / schema.name).mkdir(parents=True)
        for g in range(groups):
            for schema, cols in group_tables(g * args.flush_every, args.flush_every).items():
                pq.write_table(pa.table(cols, schema=schema.arrow),
                               root / "manifests" / schema.name / f"s00000of00001-{g:06d}.parquet")
            if g % 10_000 == 0:
                print(f"  writing group {g:,} of {groups:,} ({time.perf_counter() - t:.0f} s)", flush=True)
        print(f"{args.videos:,} videos in {groups:,} flush groups x 3 tables written in "
              f"{time.perf_counter() - t:.0f} s")
        before = reads(root)
        compact_s, res = timed(lambda: compact(root))
        after = reads(root)
        print(f"compaction: {res['files_before']:,} -> {res['files_after']:,} part files in {compact_s:.0f} s")
        for name in before:
            print(f"  {name:<24} before {before[name]:8.1f} s   after {after[name]:6.1f} s   "
                  f"({before[name] / after[name]:.0f}x)")


if __name__ == "__main__":
    main()
