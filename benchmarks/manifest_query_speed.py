"""How fast are DuckDB queries over a big faces manifest? (issue 3: "5 M rows in seconds")

Generates a faces manifest of ``--rows`` rows (default 5,000,000, in 10 part files, the real schema with
plausible values) under a temporary root, then times typical queries through ``facekit.manifests.query`` and,
as the baseline in the same process, the same answers with pandas after reading the whole table.

    python benchmarks/manifest_query_speed.py                 # ~1 min, ~2 GB RAM for the pandas baseline
    python benchmarks/manifest_query_speed.py --rows 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facekit.manifests.io import read_manifest, table_dir
from facekit.manifests.query import run_query
from facekit.manifests.schemas import FACES

QUERIES = {
    "faces per sequence, top 10": "SELECT sequence_id, count(*) AS n FROM faces GROUP BY 1 ORDER BY n DESC LIMIT 10",
    "sharp frontal faces": "SELECT count(*) FROM faces WHERE blur > 100 AND abs(yaw) < 0.2 AND score > 0.99",
    "per-video mean quality": "SELECT video_id, avg(score), avg(blur), count(*) FROM faces GROUP BY 1",
}


def generate(root: Path, rows: int, parts: int = 10, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    per = rows // parts
    folder = table_dir(root, "faces")
    folder.mkdir(parents=True)
    for p in range(parts):
        n = per if p < parts - 1 else rows - per * (parts - 1)
        seq = rng.integers(0, rows // 30, n)
        video = seq // 8
        cols = {
            "sequence_id": pa.array([f"v{v:07d}#{s % 8}" for v, s in zip(video, seq)]),
            "video_id": pa.array([f"v{v:07d}" for v in video]),
            "frame_index": pa.array(rng.integers(0, 10_000, n)),
            "timestamp_sec": pa.array(rng.uniform(0, 400, n)),
            **{c: pa.array(rng.uniform(0, 1000, n).astype(np.float32))
               for c in ("box_x1", "box_y1", "box_x2", "box_y2")},
            "landmarks_5x2": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.uniform(0, 1000, n * 10).astype(np.float32)), 10),
            "score": pa.array(rng.uniform(0.9, 1.0, n).astype(np.float32)),
            "blur": pa.array(rng.gamma(2.0, 60.0, n).astype(np.float32)),
            "yaw": pa.array(rng.normal(0, 0.2, n).astype(np.float32)),
            "roll_deg": pa.array(rng.normal(0, 5, n).astype(np.float32)),
            "tracked": pa.array(rng.random(n) < 0.7),
            "crop_path": pa.array([f"crops/v{v:07d}/{s}_{i}.jpg" for i, (v, s) in enumerate(zip(video, seq))]),
        }
        pq.write_table(pa.table(cols, schema=FACES.arrow), folder / f"part-{p:03d}.parquet", compression="zstd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        generate(root, args.rows)
        size = sum(p.stat().st_size for p in table_dir(root, "faces").glob("*.parquet")) / 2**20
        print(f"generated {args.rows:,} faces rows ({size:.0f} MiB Parquet) in {time.perf_counter() - t0:.1f} s")
        duck = {}
        for name, sql in QUERIES.items():
            t = time.perf_counter()
            run_query(root, sql)
            duck[name] = time.perf_counter() - t
        t = time.perf_counter()
        df = read_manifest(root, "faces", columns=["sequence_id", "video_id", "score", "blur", "yaw"])
        t_read = time.perf_counter() - t
        base = {}
        t = time.perf_counter()
        df.groupby("sequence_id").size().nlargest(10)
        base["faces per sequence, top 10"] = time.perf_counter() - t
        t = time.perf_counter()
        int(((df.blur > 100) & (df.yaw.abs() < 0.2) & (df.score > 0.99)).sum())
        base["sharp frontal faces"] = time.perf_counter() - t
        t = time.perf_counter()
        df.groupby("video_id").agg(score=("score", "mean"), blur=("blur", "mean"), n=("score", "size"))
        base["per-video mean quality"] = time.perf_counter() - t
        print(f"pandas baseline: read the 5 columns in {t_read:.2f} s, then per query")
        print(f"{'query':32s} {'duckdb s':>9s} {'pandas s (+read)':>17s} {'ratio':>6s}")
        for name in QUERIES:
            b = base[name] + t_read
            print(f"{name:32s} {duck[name]:9.2f} {b:17.2f} {b / duck[name]:6.1f}x")


if __name__ == "__main__":
    main()
