"""Items per second of `extract-sequences` on the local engine and on Ray, same videos, same run, this machine.

Videos: copies of the embedded sample clip (90 frames, 640x360, three shots), so it runs from a fresh checkout.
Runs, each into a new output root, timed from the call to the last committed part (engine start-up included):
the local engine in this process, the local pool with `--workers W`, and Ray (a local Ray started for the run,
W actors). Prints videos/s, the ratio to the in-process baseline, and whether the Ray manifests equal the
pool's row for row (both run one torch thread per worker).

    python benchmarks/ray_vs_local.py                # 8 videos, W = number of cores
    python benchmarks/ray_vs_local.py --videos 16 --workers 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from facekit.engine.local import Engine, cores
from facekit.manifests import read_manifest
from facekit.pipeline.extract_sequences import extract_sequences
from facekit.video import sample_video


def tables(out: Path) -> dict[str, pd.DataFrame]:
    keys = {"videos": ["video_id"], "sequences": ["sequence_id"], "faces": ["sequence_id", "frame_index"]}
    return {t: read_manifest(out, t).sort_values(k).reset_index(drop=True) for t, k in keys.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--workers", type=int, default=cores())
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facekit-ray-bench-"))
    try:
        clips = work / "clips"
        clips.mkdir()
        for i in range(args.videos):
            shutil.copy(sample_video(), clips / f"v{i:03d}.mp4")
        runs = [("local, in this process", Engine("local", 0)),
                (f"local, --workers {args.workers}", Engine("local", args.workers)),
                (f"ray (local Ray), --workers {args.workers}", Engine("ray", args.workers))]
        rates, outs = [], []
        for name, engine in runs:
            out = work / name.split(",")[0].replace(" ", "_") / str(len(outs))
            t0 = time.perf_counter()
            summary = extract_sequences([clips], out, progress=False, engine=engine)
            seconds = time.perf_counter() - t0
            rates.append(args.videos / seconds)
            outs.append(out)
            extra = f"  ({engine.stats.line()})" if engine.name == "ray" else ""
            print(f"{name:36s} {seconds:7.1f} s  {rates[-1]:6.2f} videos/s  x{rates[-1] / rates[0]:.2f}  "
                  f"{summary.faces} faces{extra}")
        a, b = tables(outs[1]), tables(outs[2])
        same = all(a[t].equals(b[t]) for t in a)
        print(f"ray manifests equal the local pool's row for row: {same} "
              f"({', '.join(f'{t} {len(a[t])}' for t in a)} rows)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
