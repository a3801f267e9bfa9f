"""The aggregator's held-out evaluation: the paper's Eq. 2-3 on identities never trained on, clean and
motion-blurred, against same-run baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facekit.models.aggregator import FaceAggregator
from facekit.report.set_grids import save_grid
from facekit.train.aggregator_config import AggregatorConfig
from facekit.train.framesets import (
    FrameSetDataset,
    FrameSets,
)
from facekit.train.frozen_features import FrozenFeatures

METHODS = ("aggregated", "input_frames", "average_feature", "random_frame", "best_score_frame")


@torch.no_grad()
def evaluate_heldout(G: FaceAggregator, feats: FrozenFeatures, data: FrameSets, cfg: AggregatorConfig,
                     device: torch.device, run_dir: Path) -> dict:
    """The paper's Eq. 2-3 on identities never trained on, against same-run baselines. For each held-out video:
    its set (the first N frames, no augmentation) -> A. Against every frame P of the person's other videos
    (genuine) and of the other held-out people (impostor), squared distances of L2-normalised features of:
    ``aggregated`` ||f_A - f_P||^2; ``input_frames`` (Eq. 2's right side: the mean over the n inputs of
    ||f_In - f_P||^2); ``average_feature`` ||norm(mean f_In) - f_P||^2; ``random_frame`` (one member, seeded);
    ``best_score_frame`` (the member with the highest detection score). ``aggregated_closer_than`` counts the
    genuine pairs where A is strictly closer than each baseline. Done on clean sets and, with
    ``heldout_blur`` = K > 0, again with 9 of every 10 members motion-blurred (kernel K, a random direction each,
    seeded; the paper's Table 4 setting) under ``blurred``; P is never blurred."""
    G.eval()
    ds = FrameSetDataset(data, cfg.data, augment=False)
    # every held-out frame is read and embedded once, then reused as set member, positive and impostor
    images = {int(v): torch.stack([ds.image(int(f), None) for f in data.video_frames[v]]).to(device)
              for v in data.heldout_videos}
    unit_feats = {v: F.normalize(feats(x), dim=1) for v, x in images.items()}
    result = _heldout_condition(G, feats, data, cfg, images, unit_feats, 0, run_dir / "heldout.png")
    if cfg.heldout_blur > 1:
        result["blurred"] = _heldout_condition(G, feats, data, cfg, images, unit_feats, cfg.heldout_blur,
                                               run_dir / "heldout_blurred.png")
    G.train()
    from facekit.fsutil import write_json

    write_json(run_dir / "heldout.json", result)
    return result


def _heldout_condition(G, feats, data, cfg, images: dict, unit_feats: dict, blur: int, grid: Path) -> dict:
    from facekit.transforms.blur import blurred_positions, motion_blur

    n_set = cfg.data.set_size
    gen = {k: [] for k in METHODS}
    imp = {k: [] for k in METHODS}
    closer = {k: [] for k in METHODS[1:]}
    grid_sets, grid_aggs = [], []
    held_ids = set(data.identity_of_video[data.heldout_videos].tolist())
    for v in map(int, data.heldout_videos):
        rng = np.random.default_rng([cfg.seed, v, blur])
        x_set = images[v][:n_set]
        f_in = unit_feats[v][:n_set]
        if blur > 1:
            hit = np.flatnonzero(blurred_positions(len(x_set)))
            x_set = x_set.clone()
            for i in hit:
                x_set[i] = motion_blur(x_set[i][None], blur, float(rng.uniform(0, 180)))[0]
            f_in = F.normalize(feats(x_set), dim=1)
        agg = G(x_set[None])
        members = data.video_frames[v][:n_set]
        best = int(np.argmax(data.scores[members]))
        f = {"aggregated": F.normalize(feats(agg), dim=1),
             "average_feature": F.normalize(f_in.mean(0, keepdim=True), dim=1),
             "random_frame": f_in[int(rng.integers(len(f_in)))][None],
             "best_score_frame": f_in[best][None]}
        ident = data.identity_of_video[v]
        for kind, store in (("genuine", gen), ("impostor", imp)):
            if kind == "genuine":
                others = [u for u in data.identity_videos[ident] if u != v]
            else:
                others = [u for i in held_ids if i != ident for u in data.identity_videos[i]]
            if not others:
                continue
            f_p = torch.cat([unit_feats[int(u)] for u in others])
            d = {k: (x - f_p).pow(2).sum(1) for k, x in f.items()}
            d["input_frames"] = (f_in[:, None] - f_p[None]).pow(2).sum(-1).mean(0)  # the formula of d_a: ties stay ties
            for k in METHODS:
                store[k] += d[k].tolist()
            if kind == "genuine":
                for k in closer:
                    closer[k] += (d["aggregated"] < d[k]).tolist()
        if len(grid_sets) < 8:
            grid_sets.append(x_set), grid_aggs.append(agg[0])
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    result = {"sets": int(len(data.heldout_videos)), "genuine_pairs": len(gen["aggregated"]),
              "impostor_pairs": len(imp["aggregated"]), "blur_kernel": blur,
              "genuine": {k: mean(v) for k, v in gen.items()},
              "impostor": {k: mean(v) for k, v in imp.items()},
              "aggregated_closer_than": {k: mean(v) for k, v in closer.items()}}
    result["aggregated_closer_than_frames"] = result["aggregated_closer_than"]["input_frames"]  # Eq. 2
    if grid_sets:
        n = min(len(s) for s in grid_sets)
        save_grid(torch.stack([s[:n] for s in grid_sets]), torch.stack(grid_aggs), None, grid)
    return result
