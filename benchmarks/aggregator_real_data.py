"""Does `facekit train aggregator` do what the paper says, on real faces, on this machine? (issue 5, evidence)

Cuts the 10 talking-head clips of ../shared/data into a VoxCeleb2 layout (2 "videos" x 3 utterances per person),
extracts 5 frames per utterance at 64 px, and trains recipes/aggregator_small_real.yaml with the frozen SeqFace
model of benchmarks/seqface_real_data.py as F (run that first). 3 identities are held out; on them it reports
the paper's Eq. 2 check: is the aggregated face's feature closer (squared distance of unit features) to the
person's other-video faces than the input frames are, and than the average feature is? Numbers as they come out.

    python benchmarks/seqface_real_data.py && python benchmarks/aggregator_real_data.py     # ~10 + ~10 min
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from common import facekit as run  # benchmarks/common.py

from facekit.video.synth import voxceleb_layout

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = Path("out/aggregator_real")
RECIPE = ROOT / "recipes" / "aggregator_small_real.yaml"
EXTRACTOR = Path("out/seqface_real/runs/B_seqface_lsr_dsa/model.pt")


def main_() -> None:
    if not EXTRACTOR.is_file():
        sys.exit(f"{EXTRACTOR}: run benchmarks/seqface_real_data.py first (its model is the frozen extractor)")
    clips = sorted((SHARED / "video-retalking/examples/face").glob("*.mp4")) + \
        sorted((SHARED / "LivePortrait/assets/examples/driving").glob("*.mp4"))
    if not clips:
        sys.exit(f"{SHARED}: the talking-head clips are not there (this script needs ../shared/data)")
    if not (OUT / "vox").is_dir():
        voxceleb_layout(clips, OUT / "vox", videos=2, utterances=3)
    run(["extract-frames", str(OUT / "vox"), "-o", str(OUT / "frames"), "-k", "5", "--crop-size", "64", "-q",
         "--min-face-size", "30"])
    run_dir = OUT / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run(["train", "aggregator", "-r", str(RECIPE), "-o", str(run_dir), "-q", "--device", "cpu"])
    held = json.loads((run_dir / "heldout.json").read_text())
    g, i = held["genuine"], held["impostor"]
    lines = ["| feature of the set | to the person's other video (genuine) | to other people (impostor) | gap |",
             "|---|---|---|---|"]
    for k, label in (("input_frames", "each input frame (mean)"), ("average_feature", "average of the frame features"),
                     ("aggregated", "aggregated face")):
        lines.append(f"| {label} | {g[k]:.4f} | {i[k]:.4f} | {i[k] - g[k]:.4f} |")
    text = (f"held-out: {held['sets']} sets of 3 identities, {held['genuine_pairs']} genuine and "
            f"{held['impostor_pairs']} impostor pairs; squared distances of unit features (smaller genuine and "
            f"larger gap are better)\n" + "\n".join(lines) +
            f"\naggregated face closer to the other video than the input frames (Eq. 2) in "
            f"{held['aggregated_closer_than_frames']:.1%} of genuine pairs")
    print(text)
    (OUT / "report.md").write_text(text + "\n")


if __name__ == "__main__":
    main_()
