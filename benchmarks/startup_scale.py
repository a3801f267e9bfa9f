"""Training start-up at the field's sizes (issue 28): how long until the first batch, and the driver's memory.

    python benchmarks/startup_scale.py [--scale 1.0]

Generates, under a temporary folder, manifests of the paper's sizes with the real schemas: an identities root
of 5.8 M images over 85 K identities (MS1MV2 as researchers hold it), a sequences root of 2.5 M faces in 125 K
sequences (Celeb-Seq's order of magnitude) and an ``extract-frames`` root of 5.3 M frames (1.06 M utterances of
5 frames, 145 K videos, 6 K identities: VoxCeleb2). The rows point at a pool of 256 real JPEG crops (the start-up
reads manifests, not images). Then, each in a fresh process, the trainers' own data path: ``load_training_data``
+ the batch sampler + a DataLoader with 2 workers up to the first batch of 128 (SeqFace), and
``load_frame_sets`` + the frame-set sampler up to the first batch of 6 sets of 10 (the aggregator). Prints the
seconds to the first batch and the driver's peak resident memory (VmHWM). Targets: < 60 s, < 4 GB.
``--scale 0.1`` runs at a tenth of the sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import peak_rss_mb  # benchmarks/common.py
from PIL import Image

from facekit.manifests.io import write_part
from facekit.manifests.lineage import write_lineage
from facekit.manifests.schemas import FACES, FRAMES, IDENTITIES

POOL = 256
PARTS = 12


def _pool(root: Path, size: int) -> None:
    rng = np.random.default_rng(size)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    for i in range(POOL):
        small = Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8))
        small.resize((size, size), Image.BICUBIC).save(root / "crops" / f"{i}.jpg", quality=95)


def _crops(idx: np.ndarray) -> pd.Series:
    return "crops/" + pd.Series(idx % POOL).astype(str) + ".jpg"


def _geometry(n: int) -> dict:
    box = np.zeros(n, np.float32)
    return dict(box_x1=box, box_y1=box, box_x2=box + 112, box_y2=box + 112, score=np.full(n, 0.99, np.float32),
                blur=np.full(n, 150.0, np.float32), landmarks_5x2=[np.zeros(10, np.float32)] * n)


def identities_root(root: Path, images: int, classes: int) -> None:
    _pool(root, 112)
    for p, part in enumerate(np.array_split(np.arange(images), PARTS)):
        cls = (part * classes // images).astype(np.int32)
        write_part(root, IDENTITIES, f"s00000of00001-{p:06d}", pd.DataFrame(dict(
            identity="id" + pd.Series(cls).astype(str), class_index=cls, source_path=_crops(part), status="ok",
            error=None, num_faces=np.ones(len(part), np.int32), score=np.float32(0.99), face_px=np.float32(100),
            blur=np.float32(150), crop_path=_crops(part))))
    write_lineage(root, "build identities", {"template": "arcface", "crop_size": 112})


def sequences_root(root: Path, faces: int, per: int) -> None:
    _pool(root, 112)
    for p, part in enumerate(np.array_split(np.arange(faces), PARTS)):
        seq = pd.Series(part // per).astype(str)
        write_part(root, FACES, f"s00000of00001-{p:06d}", pd.DataFrame(dict(
            sequence_id="v" + seq + "#0", video_id="v" + seq, frame_index=part % per, timestamp_sec=(part % per) / 25,
            yaw=np.float32(0), roll_deg=np.float32(0), tracked=False, crop_path=_crops(part), **_geometry(len(part)))))
    write_lineage(root, "extract-sequences", {"template": "arcface", "crop_size": 112})


def frames_root(root: Path, frames: int, per_utt: int, utt_per_video: int, videos_per_id: int) -> None:
    _pool(root, 112)
    for p, part in enumerate(np.array_split(np.arange(frames), PARTS)):
        utt = part // per_utt
        video = utt // utt_per_video
        ident = pd.Series(video // videos_per_id).astype(str)
        write_part(root, FRAMES, f"s00000of00001-{p:06d}", pd.DataFrame(dict(
            utterance_id="id" + ident + "/" + pd.Series(video).astype(str) + "/" + pd.Series(utt).astype(str),
            identity="id" + ident, video=pd.Series(video).astype(str), frame_index=part % per_utt,
            timestamp_sec=(part % per_utt) / 25.0, crop_path=_crops(part), **_geometry(len(part)))))
    write_lineage(root, "extract-frames", {"template": "arcface", "crop_size": 112})


def measure_seqface(ids: Path, seqs: Path) -> dict:
    from torch.utils.data import DataLoader

    from facekit.recipes import build
    from facekit.train.seqface_config import SeqFaceConfig
    from facekit.train.seqface_data import FaceTrainingSet, MixedBatchSampler, load_training_data

    t0 = time.perf_counter()
    cfg = build(SeqFaceConfig, {"data": {"identities": str(ids), "sequences": str(seqs), "load_size": 112,
                                         "input_size": 112, "workers": 2}}, "bench")
    data = load_training_data(cfg.data)
    t_data = time.perf_counter() - t0
    sampler = MixedBatchSampler(data, 128, 0.5, 0, 0, 1000)
    loader = DataLoader(FaceTrainingSet(data, cfg.data), batch_sampler=sampler, num_workers=2)
    x, _ = next(iter(loader))
    return {"summary": data.summary(), "manifests_s": round(t_data, 1),
            "first_batch_s": round(time.perf_counter() - t0, 1), "batch": list(x.shape), "peak_rss_mb": peak_rss_mb()}


def measure_frames(frames: Path) -> dict:
    from torch.utils.data import DataLoader

    from facekit.recipes import build
    from facekit.train.aggregator_config import AggregatorConfig
    from facekit.train.framesets import FrameSetDataset, FrameSetSampler, load_frame_sets

    t0 = time.perf_counter()
    cfg = build(AggregatorConfig, {"data": {"frames": str(frames), "set_size": 5, "image_size": 112,
                                            "workers": 2}}, "bench")
    data = load_frame_sets(cfg.data)
    t_data = time.perf_counter() - t0
    loader = DataLoader(FrameSetDataset(data, cfg.data), batch_sampler=FrameSetSampler(data, 6, 0, 0, 1000),
                        num_workers=2)
    batch = next(iter(loader))
    return {"summary": data.summary(), "manifests_s": round(t_data, 1),
            "first_batch_s": round(time.perf_counter() - t0, 1), "batch": list(batch["set"].shape),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.measure:
        kind, *roots = args.measure
        out = measure_seqface(*map(Path, roots)) if kind == "seqface" else measure_frames(Path(roots[0]))
        print(json.dumps(out))
        return
    s = args.scale
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        identities_root(tmp / "ids", int(5_800_000 * s), max(2, int(85_000 * s)))
        sequences_root(tmp / "seqs", int(2_500_000 * s), 20)
        frames_root(tmp / "frames", int(5_300_000 * s), 5, 7, 24)
        print(f"generated the manifests in {time.perf_counter() - t0:.0f} s", flush=True)
        for kind, roots in (("seqface", [tmp / "ids", tmp / "seqs"]), ("aggregator", [tmp / "frames"])):
            done = subprocess.run([sys.executable, __file__, "--measure", kind, *map(str, roots)], capture_output=True,
                                  text=True, check=True, cwd=Path(__file__).parent)
            print(f"{kind}: {done.stdout.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
