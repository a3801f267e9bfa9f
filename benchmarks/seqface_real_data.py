"""Does `facekit train seqface` learn on real faces, on this machine, in minutes? (issue 4, evidence)

Builds the data from ../shared/data (once; reruns reuse it), then trains recipes/seqface_small_real.yaml twice
with the same seed and steps:
  A: L2-SphereFace on the identity data only (SeqFace Table 1, model II style);
  B: LSR-L2-SphereFace + DSA on identity + sequence data (model IX style),
and reports the held-out verification accuracy (5 identities never trained on, 10-fold, all genuine pairs +
as many impostors) of an untrained network, A and B. Numbers are printed as they come out; with 13 training
identities they say "learns, beats chance", not "matches the paper".

    python benchmarks/seqface_real_data.py            # ~10 min on 2 CPU cores
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from common import facekit as run  # benchmarks/common.py

from facekit.models import build_backbone, input_scale
from facekit.recipes import build, read_recipe
from facekit.train.seqface_config import SeqFaceConfig
from facekit.train.verify import load_pair_set, verify

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = Path("out/seqface_real")
RECIPE = ROOT / "recipes" / "seqface_small_real.yaml"
CLIPS = [SHARED / "video-retalking/examples/face", SHARED / "LivePortrait/assets/examples/driving"]


def prepare() -> None:
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: real data not found (this script needs ../shared/data)")
    deepface = SHARED / "deepface"
    run(["build", "identities", str(deepface), "--labels", str(deepface / "identities.csv"),
         "-o", str(OUT / "identities"), "-q"])
    run(["build", "identities", str(SHARED / "dlib/examples/johns"), "-o", str(OUT / "heldout"), "-q"])
    run(["extract-sequences", *map(str, CLIPS), "--template", "seqface", "-o", str(OUT / "sequences"), "-q"])


def main_() -> None:
    prepare()
    cfg = build(SeqFaceConfig, read_recipe(RECIPE), str(RECIPE))
    torch.manual_seed(cfg.seed)
    untrained = build_backbone(cfg.model.backbone, **cfg.model.kwargs, num_features=cfg.model.embedding,
                               input_size=cfg.data.input_size)
    mean, std = input_scale(cfg.model.backbone)
    results = {"untrained": verify(untrained, load_pair_set(cfg.verify), cfg.data, mean, std, torch.device("cpu"))}
    runs = {"A_identities_only": ["--set", "data.sequences=null", "--set", "loss.auxiliary=none"],
            "B_seqface_lsr_dsa": []}
    for name, extra in runs.items():
        run_dir = OUT / "runs" / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run(["train", "seqface", "-r", str(RECIPE), "-o", str(run_dir), "-q", "--device", "cpu", *extra])
        summary = json.loads((run_dir / "summary.json").read_text())
        import pandas as pd

        m = pd.read_csv(run_dir / "metrics.csv")
        results[name] = {**summary["verification"], "first_loss": float(m["loss"].iloc[0]),
                         "last_loss": float(m["loss"].iloc[-1]), "seconds": summary["seconds"]}
    lines = ["| model | training data | held-out accuracy | chief+aux loss first -> last | time |",
             "|---|---|---|---|---|"]
    u = results["untrained"]
    lines.append(f"| untrained {cfg.model.backbone} | - | {u['accuracy']:.3f} +- {u['std']:.3f} | - | - |")
    for name, label in (("A_identities_only", "13 identities"), ("B_seqface_lsr_dsa", "13 identities + 10 sequences")):
        r = results[name]
        lines.append(f"| {name} | {label} | {r['accuracy']:.3f} +- {r['std']:.3f} | "
                     f"{r['first_loss']:.2f} -> {r['last_loss']:.2f} | {r['seconds']:.0f} s |")
    text = "\n".join(lines)
    print(f"held-out verification: {u['set']}, {u['pairs']} pairs (chance 0.5)\n{text}")
    (OUT / "report.md").write_text(text + "\n")
    (OUT / "report.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main_()
