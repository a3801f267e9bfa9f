"""Ground-truth landmark error and recall of ``extract-sequences`` on a video whose landmarks are known.

    python benchmarks/extract_landmarks.py [--detect-every K ...] [--fps F] [--json OUT]
    python benchmarks/extract_landmarks.py --compare A.json B.json

Two videos (640x480, 25 fps, H.264 CRF 23, hard cuts between shots) made of dlib's hand-annotated photos
(``../shared/data/dlib/examples/faces``, 68 points per face reduced to MTCNN's five as in
``facekit.bench.landmarks``), each shot a zoom and pan (``facekit.video.synth.ken_burns``): "photos", each photo
whole for 3 s (1.0 -> 1.35x), its faces together; "faces", each annotated face alone (4x its box) for 1.6 s
(1.0 -> 1.5x, a faster pan: about 3% of the face's side a frame). Each frame's photo region is known, so every
annotated face has its five points on every frame.

Per run (each ``--detect-every`` given, default: the defaults, then the full detector on every frame at full
resolution as the reference), two passes: with the filters off (every face the detector and tracker report kept,
sequences of one face too), the ground-truth faces found (a face whose box overlaps the annotated one by IoU >= 0.3
on the same frame: detection and tracking recall) and their inter-ocular-normalised landmark error (mean and
median); with the default filters, the sequences and faces kept and frames/s. Run it at two revisions
(``PYTHONPATH=<checkout>``) to compare code: it uses only ``process_video`` and the extraction settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facekit.bench.landmarks import landmark_errors, read_dlib_examples
from facekit.detect.mtcnn import MTCNN
from facekit.pipeline.config import ExtractConfig, FilterConfig
from facekit.pipeline.video_sequences import process_video
from facekit.video.synth import ken_burns, ken_burns_boxes, write_video

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "dlib" / "examples" / "faces"
SIZE = (640, 480)
CLIPS = {  # name: (frames per shot, zoom, pan per shot (alternating in x), one face per shot)
    "photos": (75, (1.0, 1.35), (0.08, 0.04), False),  # each photo whole, its faces together
    "faces": (40, (1.0, 1.5), (0.3, 0.15), True),  # each face alone (4x its box), moving about 3% of its side a frame
}


def _shots(one_face: bool):
    """(photo, its annotated faces in photo pixels) per shot."""
    truth = read_dlib_examples(FACES)
    for name in sorted({f["image"] for f in truth}):
        with Image.open(FACES / name) as im:
            photo = im.convert("RGB")
        faces = [f for f in truth if f["image"] == name]
        if not one_face:
            yield photo, faces
            continue
        for f in faces:
            x1, y1, x2, y2 = f["box"]
            cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, 2 * max(x2 - x1, y2 - y1)
            left, top = int(max(0, cx - r * SIZE[0] / SIZE[1])), int(max(0, cy - r))
            region = photo.crop((left, top, int(min(photo.width, cx + r * SIZE[0] / SIZE[1])),
                                 int(min(photo.height, cy + r))))
            yield region, [{**g, "box": (np.asarray(g["box"]) - [left, top, left, top]).tolist(),
                            "landmarks": (np.asarray(g["landmarks"]) - [left, top]).tolist()} for g in faces]


def annotated_clip(folder: Path, name: str) -> tuple[Path, list[dict]]:
    """The clip and its ground truth: one ``{"image": frame index, "box", "landmarks"}`` per face per frame."""
    per_shot, zoom, (pan_x, pan_y), one_face = CLIPS[name]
    frames, faces = [], []
    for p, (photo, truth) in enumerate(_shots(one_face)):
        pan = (pan_x * (-1) ** p, pan_y)
        boxes = ken_burns_boxes(photo.size, per_shot, SIZE, zoom, pan)
        for t, (x0, y0, x1, y1) in enumerate(boxes):
            sx, sy = SIZE[0] / (x1 - x0), SIZE[1] / (y1 - y0)

            def move(xy: np.ndarray) -> np.ndarray:
                return np.stack([(xy[:, 0] + 0.5 - x0) * sx - 0.5, (xy[:, 1] + 0.5 - y0) * sy - 0.5], 1)

            for f in truth:
                box = move(np.asarray(f["box"], float).reshape(2, 2)).reshape(-1)
                if box[0] >= 0 and box[1] >= 0 and box[2] < SIZE[0] and box[3] < SIZE[1]:  # wholly in the frame
                    faces.append({"image": len(frames) + t, "box": box.tolist(),
                                  "landmarks": move(np.asarray(f["landmarks"], float)).tolist()})
        frames += ken_burns(photo, per_shot, SIZE, zoom, pan)
    return write_video(folder / f"dlib_{name}.mp4", frames, fps=25), faces


NO_FILTERS = FilterConfig(min_score=0.0, min_face_px=0.0, min_blur=0.0, max_abs_yaw=1e9, duplicate_threshold=0.0,
                          min_sequence_length=1)


def measure(video: Path, truth: list[dict], cfg: ExtractConfig, out: Path) -> dict:
    detector = MTCNN(min_face_size=cfg.min_face_size, thresholds=cfg.thresholds, max_side=cfg.detect_max_side)
    detector.detect(np.zeros((1, 64, 64, 3), np.uint8))  # warm-up
    start = time.perf_counter()
    kept = process_video(video, "v", out / "kept", cfg, detector)
    seconds = time.perf_counter() - start
    res = process_video(video, "v", out / "all", dataclasses.replace(cfg, filters=NO_FILTERS), detector)
    found: dict[int, list[dict]] = {}
    for f in res.faces:
        found.setdefault(f["frame_index"], []).append({
            "box": [f["box_x1"], f["box_y1"], f["box_x2"], f["box_y2"]],
            "landmarks": np.asarray(f["landmarks_5x2"]).reshape(5, 2).tolist()})
    per_face = landmark_errors(truth, found)
    errors = [e for e in per_face if e is not None]
    return {"per_face": per_face, "frames_per_s": round(kept.video["num_frames"] / seconds, 1),
            "sequences": len(kept.sequences), "faces_kept": len(kept.faces), "truth_faces": len(truth),
            "truth_found": len(errors),
            "mean_error": round(float(np.mean(errors)), 4), "median_error": round(float(np.median(errors)), 4)}


def paired(a: list[float | None], b: list[float | None], seed: int = 0) -> dict:
    """Mean of b - a over the ground-truth faces both runs found, with a 95% bootstrap interval (faces resampled)."""
    both = np.array([(x, y) for x, y in zip(a, b) if x is not None and y is not None])
    diff = both[:, 1] - both[:, 0]
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
    return {"faces": len(diff), "mean_a": round(float(both[:, 0].mean()), 4),
            "mean_b": round(float(both[:, 1].mean()), 4),
            "mean_b_minus_a": round(float(diff.mean()), 5),
            "ci95": [round(float(np.percentile(means, 2.5)), 5), round(float(np.percentile(means, 97.5)), 5)],
            "per_face_sd": round(float(both.std(0).mean()), 4)}


def compare(path_a: Path, path_b: Path) -> None:
    """The first run of each clip in two ``--json`` files, face by face."""
    a, b = json.loads(path_a.read_text()), json.loads(path_b.read_text())
    out = {clip: paired(next(iter(a[clip].values()))["per_face"], next(iter(b[clip].values()))["per_face"])
           for clip in a}
    print(json.dumps(out, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detect-every", type=int, nargs="*", help="runs at these settings (default: the default)")
    ap.add_argument("--fps", type=float, default=None)
    ap.add_argument("--json", type=Path, help="also write the results here (with each face's error)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"), help="two --json files: B's error minus A's, "
                    "face by face, on the faces both found (first run of each clip)")
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    if not FACES.exists():
        sys.exit(f"{FACES}: not found (dlib's example faces, ../shared/data)")
    rate = {"fps": args.fps} if args.fps else {}  # (no fps key: the script also runs at revisions before --fps)
    runs = {f"detect_every={k}": ExtractConfig(detect_every=k, **rate) for k in args.detect_every or []}
    if not runs:
        runs = {"defaults": ExtractConfig(**rate),
                "full detector every frame": ExtractConfig(detect_every=1, detect_max_side=None, **rate)}
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in CLIPS:
            video, truth = annotated_clip(Path(tmp), clip)
            result[clip] = {name: measure(video, truth, cfg, Path(tmp) / f"{clip}{i}")
                            for i, (name, cfg) in enumerate(runs.items())}
    print(json.dumps({c: {n: {k: v for k, v in r.items() if k != "per_face"} for n, r in runs_.items()}
                      for c, runs_ in result.items()}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
