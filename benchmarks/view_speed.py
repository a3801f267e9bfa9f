"""How fast ``facekit view`` answers on a corpus-sized root (issue 27: first page within 1 s, later pages 0.5 s).

    python benchmarks/view_speed.py [--faces 5000000] [--sequences 200000]

Generates (under a temporary folder) a sequences root with the real schemas: 5 M faces in 200 K sequences over
12 part files per table (the rows point at a pool of real-size JPEG crops, as benchmarks/startup_scale.py makes
them). Then, in this process, the viewer's own app (Starlette's test client: the server's time, without a
browser's): the seconds to start (roots, views, lock-down), the roots page, the first grid page, and later pages
(deep in the grid, sorted by a field, filtered by a WHERE expression and by a range, one sequence's page), each
the median of 3 requests. Targets: first page <= 1 s, every later page <= 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from startup_scale import PARTS, sequences_root  # benchmarks/startup_scale.py

from facekit.manifests.io import write_part
from facekit.manifests.schemas import SEQUENCES


def make_root(root: Path, faces: int, sequences: int) -> None:
    per = faces // sequences
    sequences_root(root, faces, per)
    rng = np.random.default_rng(0)
    for p, part in enumerate(np.array_split(np.arange(sequences), PARTS)):
        n = len(part)
        ids = pd.Series(part).astype(str)
        write_part(root, SEQUENCES, f"s00000of00001-{p:06d}", pd.DataFrame(dict(
            sequence_id="v" + ids + "#0", video_id="v" + ids, shot_index=np.zeros(n, np.int32),
            first_frame=np.zeros(n, np.int64), last_frame=np.full(n, per - 1), first_sec=0.0, last_sec=(per - 1) / 25,
            num_faces=np.full(n, per, np.int32), mean_score=rng.uniform(0.9, 1, n).astype(np.float32),
            mean_blur=rng.uniform(10, 500, n).astype(np.float32), min_blur=rng.uniform(5, 10, n).astype(np.float32),
            mean_face_px=rng.uniform(40, 200, n).astype(np.float32),
            mean_abs_yaw=rng.uniform(0, 1, n).astype(np.float32))))


def timed(client, url: str, params: dict | None = None, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = client.get(url, params=params)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200 and 'class="error"' not in r.text, (url, r.text[:500])
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=5_000_000)
    ap.add_argument("--sequences", type=int, default=200_000)
    args = ap.parse_args()
    from starlette.testclient import TestClient

    from facekit.view.server import make_app
    from facekit.view.state import Viewer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "seqs"
        t = time.perf_counter()
        make_root(root, args.faces, args.sequences)
        print(f"generated {args.faces:,} faces in {args.sequences:,} sequences ({PARTS} parts per table) in "
              f"{time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        client = TestClient(make_app(Viewer([root])))
        start = time.perf_counter() - t
        first = {"start (roots, views, lock-down)": start, "roots page": timed(client, "/", rounds=1),
                 "first grid page": timed(client, "/r/0", rounds=1)}
        pages = -(-args.sequences // 48)
        later = {f"grid page {pages // 2:,} (of {pages:,})": timed(client, "/r/0", {"page": pages // 2}),
                 "sorted by mean_blur, descending": timed(client, "/r/0", {"sort": "mean_blur", "desc": "1"}),
                 f"sorted by mean_abs_yaw, page {pages // 8:,}": timed(client, "/r/0", {"sort": "mean_abs_yaw",
                                                                                        "page": pages // 8}),
                 "WHERE mean_blur < 50 AND mean_face_px > 100": timed(
                     client, "/r/0", {"where": "mean_blur < 50 AND mean_face_px > 100"}),
                 "range mean_score 0.95..0.96, page 3": timed(
                     client, "/r/0", {"min_mean_score": "0.95", "max_mean_score": "0.96", "page": 3}),
                 "one sequence (25 faces)": timed(client, "/r/0/item", {"key": f"v{args.sequences // 2}#0"}),
                 "grid page 10 again": timed(client, "/r/0", {"page": 10})}
        for name, sec in first.items():
            print(f"  {name:<48} {sec:6.3f} s" + ("  (target 1 s)" if name == "first grid page" else ""))
        for name, sec in later.items():
            print(f"  {name:<48} {sec:6.3f} s  (median of 3; target 0.5 s)")
        print(f"first page {first['first grid page']:.2f} s; slowest later page {max(later.values()):.2f} s")


if __name__ == "__main__":
    main()
