"""End-to-end speed and memory of ``extract-sequences`` against an unbatched full-resolution baseline.

    python benchmarks/extract_speed.py [VIDEO] [--memory] [--memory-1080p]

Both runs happen in this process on the same video:
- baseline: the same MTCNN (same weights, thresholds, min face size), run on every frame, one frame per call,
  at full resolution (``detect_every=1, batch_frames=1, detect_max_side=None``);
- facekit: the default settings (frames decoded in a background thread and detected in batches a batch ahead of
  tracking, the full detector on every ``detect_every``-th frame of a shot and O-Net on the tracked boxes in
  between, several frames' tracked faces per O-Net pass, new faces followed backwards, frames shrunk to 1280 px
  for the first two detector stages).
Each run is timed twice and the faster time kept (the machine's noise is ~10%). Also printed: the decode-only
floor (every frame decoded in the same batches, nothing else) and, from one more default run with the stage
clock on, each stage's share of its time (decode = waiting for the decoding thread, shot cuts, detection,
tracking = O-Net on tracked boxes and backfill, alignment, filters = blur / duplicate signature / pose,
writing = JPEG encoding and files).
Sequence recall: sequences of both runs are pooled; a sequence "matches" another when their frame ranges overlap
by IoU >= 0.5 and their boxes on common frames by mean IoU >= 0.5. A run's recall is the share of pooled
distinct sequences it found. ``--memory`` also runs 10 s and 60 s synthetic clips in child processes and prints
their peak RSS (memory must not grow with video length), and a 180 s clip to show where it levels off;
``--memory-1080p`` does the same for 13 s and 60 s of 1080p (the walking video looped).
Default VIDEO: ../shared/data/facenet-pytorch/examples/video.mp4 (1920x1080), else the embedded sample clip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import peak_rss_mb  # benchmarks/common.py

from facekit.cli.extract import sample_video
from facekit.detect.boxes import iou_matrix
from facekit.detect.mtcnn import MTCNN
from facekit.pipeline.config import ExtractConfig
from facekit.pipeline.video_sequences import process_video

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared/data/facenet-pytorch/examples/video.mp4"


def run(video: Path, cfg: ExtractConfig, out: Path, repeats: int = 1) -> tuple[float, list[dict], list[dict], int]:
    detector = MTCNN(min_face_size=cfg.min_face_size, thresholds=cfg.thresholds, max_side=cfg.detect_max_side)
    detector.detect(np.zeros((1, 64, 64, 3), np.uint8))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        res = process_video(video, "v", out, cfg, detector)
        best = min(best, time.perf_counter() - start)
    return best, res.sequences, res.faces, res.video["num_frames"]


def decode_floor(video: Path, cfg: ExtractConfig, repeats: int = 2) -> float:
    """Seconds to decode every frame (the same batches extraction reads), nothing else: the floor."""
    from facekit.video.decode import VideoStream

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in VideoStream(video).batches(cfg.batch_frames):
            pass
        best = min(best, time.perf_counter() - start)
    return best


def stage_shares(video: Path, cfg: ExtractConfig, out: Path) -> dict[str, float]:
    """Share of one default run's time per stage (``facekit.pipeline.stages``; decode = waiting for the decoding
    thread); the rest (bookkeeping, the tracker's own arithmetic) is "other"."""
    from facekit.pipeline.stages import CLOCK, STAGES

    CLOCK.reset()
    CLOCK.enabled = True
    try:
        total, *_ = run(video, cfg, out)
    finally:
        CLOCK.enabled = False
    shares = {s: CLOCK.seconds[s] / total for s in STAGES}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return {k: round(v, 3) for k, v in shares.items()}


def _boxes(faces: list[dict], sid: str) -> dict[int, np.ndarray]:
    return {f["frame_index"]: np.array([f["box_x1"], f["box_y1"], f["box_x2"], f["box_y2"]])
            for f in faces if f["sequence_id"] == sid}


def same_sequence(a: tuple[dict, dict], b: tuple[dict, dict]) -> bool:
    (sa, ba), (sb, bb) = a, b
    inter = min(sa["last_frame"], sb["last_frame"]) - max(sa["first_frame"], sb["first_frame"]) + 1
    union = max(sa["last_frame"], sb["last_frame"]) - min(sa["first_frame"], sb["first_frame"]) + 1
    if inter <= 0 or inter / union < 0.5:
        return False
    common = sorted(set(ba) & set(bb))
    if not common:
        return False
    return float(np.mean([iou_matrix(ba[f][None], bb[f][None])[0, 0] for f in common])) >= 0.5


def recall(runs: dict[str, tuple[list[dict], list[dict]]]) -> dict[str, float]:
    pooled: list[tuple[dict, dict]] = []
    found: dict[str, set[int]] = {name: set() for name in runs}
    for name, (seqs, faces) in runs.items():
        for s in seqs:
            item = (s, _boxes(faces, s["sequence_id"]))
            match = next((i for i, p in enumerate(pooled) if same_sequence(p, item)), None)
            if match is None:
                pooled.append(item)
                match = len(pooled) - 1
            found[name].add(match)
    return {name: len(ids) / max(len(pooled), 1) for name, ids in found.items()}


def peak_rss_child(video: Path) -> float:
    code = ("import sys;from pathlib import Path;import tempfile;"
            "from facekit.pipeline.config import ExtractConfig;sys.path.insert(0,'benchmarks');"
            "from extract_speed import run, peak_rss_mb;"
            f"run(Path({str(video)!r}), ExtractConfig(), Path(tempfile.mkdtemp()));"
            "print(peak_rss_mb())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def synthetic_clip(seconds: int, folder: Path) -> Path:
    from PIL import Image

    from facekit.video.decode import VideoStream
    from facekit.video.synth import photo_clip, write_video

    stream = VideoStream(sample_video())
    frames = np.concatenate([f for _, f, _ in stream.batches(32)])
    photos = [Image.fromarray(frames[i]) for i in (0, 30, 60)]
    per_shot = 25 * 2  # 2 s shots at 25 fps
    clip = []
    while len(clip) < seconds * 25:
        clip += photo_clip(photos, per_shot, (640, 360))
    return write_video(folder / f"synthetic_{seconds}s.mp4", clip[: seconds * 25], fps=25)


def looped_1080p(seconds: int, folder: Path) -> Path:
    """The 1080p walking video (4.2 s) played forwards and backwards until ``seconds`` at 25 fps, streamed to the
    encoder (a 60 s 1080p clip would be 9 GB of frames in memory)."""
    from facekit.video.decode import VideoStream
    from facekit.video.synth import write_video

    stream = VideoStream(DEFAULT)
    order = list(range(stream.info.num_frames)) + list(range(stream.info.num_frames - 2, 0, -1))

    def frames():
        cache = np.concatenate([f for _, f, _ in stream.batches(16)])  # 105 frames, 650 MB: this process only
        for i in range(seconds * 25):
            yield cache[order[i % len(order)]]

    return write_video(folder / f"walking_{seconds}s_1080p.mp4", frames(), fps=25)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    video = Path(args[0]) if args else (DEFAULT if DEFAULT.exists() else sample_video())
    fast_cfg = ExtractConfig()
    base_cfg = ExtractConfig(detect_every=1, batch_frames=1, detect_max_side=None)
    with tempfile.TemporaryDirectory() as tmp:
        t_base, s_base, f_base, n = run(video, base_cfg, Path(tmp) / "base", repeats=2)
        t_fast, s_fast, f_fast, _ = run(video, fast_cfg, Path(tmp) / "fast", repeats=2)
        rec = recall({"baseline": (s_base, f_base), "facekit": (s_fast, f_fast)})
        result = {
            "video": str(video), "frames": n, "decode_only_frames_per_s": round(n / decode_floor(video, fast_cfg), 1),
            "baseline_frames_per_s": round(n / t_base, 2), "facekit_frames_per_s": round(n / t_fast, 2),
            "speedup": round(t_base / t_fast, 2),
            "baseline_sequences": len(s_base), "facekit_sequences": len(s_fast),
            "baseline_recall": round(rec["baseline"], 3), "facekit_recall": round(rec["facekit"], 3),
            "peak_rss_mb_this_process": round(peak_rss_mb(), 1),
            "facekit_share_of_time_per_stage": stage_shares(video, fast_cfg, Path(tmp) / "stages"),
        }
        if "--memory" in sys.argv:
            for seconds in (10, 60, 180):
                clip = synthetic_clip(seconds, Path(tmp))
                result[f"peak_rss_mb_{seconds}s_clip"] = round(peak_rss_child(clip), 1)
        if "--memory-1080p" in sys.argv:
            for seconds in (13, 60):
                clip = looped_1080p(seconds, Path(tmp))
                result[f"peak_rss_mb_{seconds}s_1080p_clip"] = round(peak_rss_child(clip), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
