"""``extract-sequences`` at default settings, this checkout against an earlier revision, on the same videos.

    python benchmarks/extract_revisions.py [VIDEO ...] [--base REV] [--rounds N] [--real-clips]

The earlier revision (default 27b27c4, the code before issue 25) is checked out into a temporary git worktree.
Each round runs one video once per revision, alternating, each run in a fresh process (its own imports: the two
revisions' modules never mix) that loads MTCNN, runs ``process_video`` on the video once to warm up (a worker's
state after its first video) and then times it, with each revision's default ``ExtractConfig``. Printed per
video: the median frames/s of each revision over the rounds, their ratio, the sequences and faces each kept,
and each revision's sequence recall (``extract_speed.recall``: the sequences of both pooled, matched by frame
range IoU >= 0.5 and mean box IoU >= 0.5). Default videos: LivePortrait's d3.mp4 (512 px talking head) and
facenet-pytorch's 1080p walking clip; ``--real-clips``: the 12 real clips of ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from extract_speed import recall  # benchmarks/extract_speed.py
from fps_sampling import CLIPS as REAL_CLIPS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VIDEOS = [DATA / "LivePortrait/assets/examples/driving/d3.mp4", DATA / "facenet-pytorch/examples/video.mp4"]
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
from facekit.detect.mtcnn import MTCNN
from facekit.pipeline.config import ExtractConfig
from facekit.pipeline.video_sequences import process_video
cfg = ExtractConfig()
detector = MTCNN(min_face_size=cfg.min_face_size, thresholds=cfg.thresholds, max_side=cfg.detect_max_side)
detector.detect(np.zeros((1, 64, 64, 3), np.uint8))
with tempfile.TemporaryDirectory() as tmp:
    process_video(Path(sys.argv[1]), "v", Path(tmp) / "warm", cfg, detector)
    start = time.perf_counter()
    res = process_video(Path(sys.argv[1]), "v", Path(tmp) / "timed", cfg, detector)
    seconds = time.perf_counter() - start
keys = ("sequence_id", "frame_index", "box_x1", "box_y1", "box_x2", "box_y2")
print(json.dumps({"fps": res.video["num_frames"] / seconds, "error": res.video["error"],
                  "sequences": [{k: s[k] for k in ("sequence_id", "first_frame", "last_frame")} for s in res.sequences],
                  "faces": [{k: float(f[k]) if k.startswith("box") else f[k] for k in keys} for f in res.faces]}))
"""


def run_once(code_root: Path, video: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root)}  # ahead of site-packages: that revision's facekit
    done = subprocess.run([sys.executable, "-c", CHILD, str(video)], env=env, cwd=code_root, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"{code_root}: {done.stderr.strip().splitlines()[-1]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["error"]:
        sys.exit(f"{video}: {out['error']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="*", type=Path, default=VIDEOS)
    ap.add_argument("--base", default="27b27c4", help="the earlier revision")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--real-clips", action="store_true", help="the 12 real clips of ../shared/data")
    args = ap.parse_args()
    if args.real_clips:
        args.videos = [DATA / c for c in REAL_CLIPS]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True,
                       capture_output=True)
        try:
            result = {}
            for video in (v.resolve() for v in args.videos):
                runs: dict[str, list[dict]] = {"base": [], "this": []}
                for _ in range(args.rounds):
                    runs["base"].append(run_once(base, video))
                    runs["this"].append(run_once(ROOT, video))
                fps = {k: statistics.median(r["fps"] for r in v) for k, v in runs.items()}
                rec = recall({k: (v[0]["sequences"], v[0]["faces"]) for k, v in runs.items()})
                result[video.name] = {
                    f"{args.base} frames/s": round(fps["base"], 1), "this checkout frames/s": round(fps["this"], 1),
                    "ratio": round(fps["this"] / fps["base"], 2),
                    "each run": {k: [round(r["fps"], 1) for r in v] for k, v in runs.items()},
                    "sequences": {k: len(v[0]["sequences"]) for k, v in runs.items()},
                    "faces": {k: len(v[0]["faces"]) for k, v in runs.items()},
                    "sequence recall": {k: round(v, 3) for k, v in rec.items()}}
                print(video.name, json.dumps(result[video.name]), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
