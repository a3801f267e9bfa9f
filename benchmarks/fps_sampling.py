"""What a sampling rate does (issue 25): `extract-sequences` at the videos' own rate and at 10 and 5 frames per
second of video time, on the real clips of ../shared/data (talking heads, a walk, a group).

    python benchmarks/fps_sampling.py

Prints, per rate: video frames per second of wall time (the clips' frames / seconds, one process, 2 threads),
sequences and faces kept, and the recall of the native run's sequences: a native sequence of at least 1 s is
recalled when a sequence of the sampled run in the same video covers at least half of its time span. Shorter
native sequences are counted apart: at 5 fps a sequence needs 1 s of video to reach min_sequence_length (5 faces).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from facekit.manifests.io import read_manifest
from facekit.pipeline.config import ExtractConfig
from facekit.pipeline.extract_sequences import extract_sequences

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = ["face_recognition/examples/short_hamilton_clip.mp4", "facenet-pytorch/examples/video.mp4",
         *(f"video-retalking/examples/face/{i}.mp4" for i in range(1, 6)),
         *(f"LivePortrait/assets/examples/driving/d{i}.mp4" for i in (3, 12, 18, 19, 20))]


def recall(native, sampled, min_span: float = 1.0) -> tuple[float, int]:
    long = native[native["last_sec"] - native["first_sec"] >= min_span]
    hits = 0
    for r in long.itertuples():
        mine = sampled[sampled["video_id"] == r.video_id]
        overlap = (mine["last_sec"].clip(upper=r.last_sec) - mine["first_sec"].clip(lower=r.first_sec)).clip(lower=0)
        hits += bool((overlap >= 0.5 * (r.last_sec - r.first_sec)).any())
    return hits / max(len(long), 1), len(long)


def main() -> None:
    clips = [SHARED / c for c in CLIPS if (SHARED / c).is_file()]
    if not clips:
        raise SystemExit(f"no clips under {SHARED}")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fps in (None, 10.0, 5.0):
            out = Path(tmp) / f"fps{fps}"
            t = time.perf_counter()
            summary = extract_sequences(clips, out, ExtractConfig(fps=fps), progress=False)
            seconds = time.perf_counter() - t
            runs[fps] = (read_manifest(out, "sequences"), summary, seconds)
        frames = sum(int(v) for v in read_manifest(Path(tmp) / "fpsNone", "videos")["num_frames"])
        print(f"{len(clips)} clips, {frames} frames")
        print(f"{'rate':>8} {'video frames/s':>15} {'sequences':>10} {'faces':>7} {'recall (>= 1 s)':>16}")
        for fps, (seqs, summary, seconds) in runs.items():
            r, n = recall(runs[None][0], seqs)
            print(f"{'native' if fps is None else f'{fps:g} fps':>8} {frames / seconds:>15.1f} {summary.sequences:>10} "
                  f"{summary.faces:>7} {r:>10.1%} of {n}")


if __name__ == "__main__":
    main()
