"""The Face Aggregation Network on real faces with a real frozen F (dlib-torch:default): evidence on held-out people.

1. Data: every talking-head and multi-person clip of ../shared/data (video-retalking 1-5, LivePortrait driving d3,
   d12, d18, d19, d20, the Hamilton clip, facenet-pytorch's walking video) through `facekit extract-sequences`
   (crops on the `dlib` template at 112 px, F's own geometry: F's input is then a plain resize to 150). A person
   is one face sequence (a track inside one shot); each sequence is cut into disjoint windows of WINDOW
   consecutive kept faces, the "videos" of that person (a partial last window is dropped). People with 2+
   windows are kept; sorted by name, every third (positions 2, 5, 8, ...) is held out of training.
2. Training: recipes/aggregator_dlib_real.yaml (the paper's losses and weights; beta scaled to F, see there),
   `facekit train aggregator`, resumable: rerunning this script continues an unfinished run.
3. Measures on the held-out people: heldout.json of the run (Eq. 2 rates against a random frame, the average of
   the frame features and the highest-detection-score frame; clean and with 9 of 10 set members motion-blurred,
   kernel 17), and `facekit bench ytf` on YTF-format pairs of held-out windows (every genuine pair, as many
   impostor pairs drawn with a fixed seed, 10 splits), `--method aggregator` vs `--method avg`, clean and
   `--blur 17`, N = 10, n_avg = 2 (20 frames per window).

    python benchmarks/aggregator_evidence.py                 # ~35 min on a 2-core CPU; writes out/aggregator_evidence/
    python benchmarks/aggregator_evidence.py --steps 200     # a shorter training run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from common import facekit as run  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RECIPE = ROOT / "recipes" / "aggregator_dlib_real.yaml"
WINDOW = 20  # kept faces per "video": N x n_avg = 10 x 2 frames for the DAN protocol
CLIPS = {  # link name -> clip under ../shared/data
    **{f"retalking{i}": f"video-retalking/examples/face/{i}.mp4" for i in range(1, 6)},
    **{f"liveportrait_{d}": f"LivePortrait/assets/examples/driving/{d}.mp4"
       for d in ("d3", "d12", "d18", "d19", "d20")},
    "hamilton": "face_recognition/examples/short_hamilton_clip.mp4",
    "walking": "facenet-pytorch/examples/video.mp4",
}


def link_clips(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rel in CLIPS.items():
        src = SHARED / rel
        if not src.is_file():
            sys.exit(f"{src}: missing (this script needs ../shared/data)")
        link = folder / f"{name}.mp4"
        if not link.exists():
            link.symlink_to(src)


def windows(seq_root: Path):
    """The faces manifest -> frames rows (identity = sequence, video = window number) and the held-out people."""
    from facekit.manifests.io import read_manifest

    faces = read_manifest(seq_root, "faces").sort_values(["sequence_id", "frame_index"]).reset_index(drop=True)
    faces["identity"] = faces["sequence_id"].str.replace("#", "-s", regex=False)
    faces["window"] = faces.groupby("sequence_id").cumcount() // WINDOW
    full = faces.groupby(["identity", "window"])["frame_index"].transform("size") == WINDOW
    faces = faces[full]
    per_person = faces.groupby("identity")["window"].nunique()
    people = sorted(per_person[per_person >= 2].index)
    faces = faces[faces["identity"].isin(people)]
    held = people[2::3]
    rows = faces.assign(utterance_id=faces["identity"] + "/" + faces["window"].astype(str),
                        video=faces["window"].map(lambda w: f"w{w:02d}"))
    cols = ["utterance_id", "identity", "video", "frame_index", "timestamp_sec", "box_x1", "box_y1", "box_x2",
            "box_y2", "landmarks_5x2", "score", "blur", "crop_path"]
    return rows[cols].reset_index(drop=True), people, held


def write_frames(seq_root: Path, out: Path, frames, held: list[str]) -> None:
    from facekit.manifests.lineage import write_derived

    if out.exists():
        shutil.rmtree(out)
    write_derived(seq_root, out, {"frames": frames}, "benchmarks/aggregator_evidence.py",
                  {"window": WINDOW, "identity": "sequence_id", "heldout": held})


def write_ytf(seq_root: Path, out: Path, frames, held: list[str], seed: int = 0) -> tuple[int, int]:
    """aligned_images_DB/<person>/<window>/f.<frame>.jpg (links to the crops) and splits.txt over held-out windows."""
    db = out / "aligned_images_DB"
    if db.exists():
        shutil.rmtree(db)
    vids = []
    for (ident, vid), g in frames[frames["identity"].isin(held)].groupby(["identity", "video"]):
        folder = db / ident / str(int(vid[1:]))
        folder.mkdir(parents=True)
        for r in g.itertuples():
            (folder / f"f.{r.frame_index}.jpg").symlink_to((seq_root / r.crop_path).resolve())
        vids.append(f"{ident}/{int(vid[1:])}")
    pos = [(a, b) for i, a in enumerate(vids) for b in vids[i + 1:] if a.split("/")[0] == b.split("/")[0]]
    neg_all = [(a, b) for i, a in enumerate(vids) for b in vids[i + 1:] if a.split("/")[0] != b.split("/")[0]]
    rng = np.random.default_rng(seed)
    neg = [neg_all[i] for i in sorted(rng.choice(len(neg_all), min(len(pos), len(neg_all)), replace=False))]
    pairs = [(a, b, 1) for a, b in pos] + [(a, b, 0) for a, b in neg]
    order = rng.permutation(len(pairs))
    lines = ["split number, pair id, first name, second name, is same"]
    for k, i in enumerate(order):
        a, b, same = pairs[i]
        lines.append(f"{k % 10 + 1}, {k + 1}, {a}, {b}, {same}")
    (out / "splits.txt").write_text("\n".join(lines) + "\n")
    return len(pos), len(neg)


def bench(ytf: Path, method: str, blur: int, agg: Path, reports: Path) -> dict:
    args = ["bench", "ytf", "--root", str(ytf / "aligned_images_DB"), "--splits", str(ytf / "splits.txt"),
            "--N", "10", "--navg", "2", "--method", method, "--model", "dlib-torch:default", "--aligned", "--subset",
            "--out", str(reports), "--cache", str(reports / "cache"), "-q"]
    if method == "aggregator":
        args += ["--aggregator", str(agg)]
    if blur:
        args += ["--blur", str(blur)]
    before = set(reports.glob("ytf-*"))
    run(args)
    (new,) = set(reports.glob("ytf-*")) - before
    return json.loads((new / "report.json").read_text())["metrics"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/aggregator_evidence"))
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    a = ap.parse_args()
    out = a.out
    link_clips(out / "clips")
    if not (out / "seq" / "manifests").is_dir():
        run(["extract-sequences", str(out / "clips"), "-o", str(out / "seq"), "--template", "dlib", "--crop-size",
             "112", "-q"])
    frames, people, held = windows(out / "seq")
    write_frames(out / "seq", out / "frames", frames, held)
    n_pos, n_neg = write_ytf(out / "seq", out / "ytf", frames, held)
    print(f"{len(people)} people ({len(held)} held out: {', '.join(held)}), {frames['video'].nunique()} max windows, "
          f"{len(frames)} frames; YTF-format pairs: {n_pos} genuine, {n_neg} impostor")
    run_dir = out / "run"
    extra = ["--set", f"data.frames={out / 'frames'}", "--set", f"data.holdout_identities={json.dumps(held)}"]
    if a.steps:
        extra += ["--set", f"optim.steps={a.steps}"]
    resume = (run_dir / "checkpoints" / "last.pt").is_file() and not (run_dir / "heldout.json").is_file()
    if resume:
        run(["train", "aggregator", "-o", str(run_dir), "--resume", "--device", "cpu"] +
            (["--set", f"optim.steps={a.steps}"] if a.steps else []))
    elif not (run_dir / "heldout.json").is_file():
        run(["train", "aggregator", "-r", str(RECIPE), "-o", str(run_dir), "--device", "cpu"] + extra)
    held_json = json.loads((run_dir / "heldout.json").read_text())
    reports = out / "reports"
    results = {(m, b): bench(out / "ytf", m, b, run_dir / "aggregator.pt", reports)
               for m in ("avg", "aggregator") for b in (0, 17)}
    text = report(held_json, results, held, n_pos, n_neg)
    print(text)
    (out / "report.md").write_text(text + "\n")


def report(held: dict, results: dict, people: list[str], n_pos: int, n_neg: int) -> str:
    lines = [f"held-out people: {', '.join(people)}; {held['sets']} sets, {held['genuine_pairs']} genuine pairs", "",
             "| Eq. 2: aggregated face closer to the other videos than ... | clean | 9 of 10 blurred (17 px) |",
             "|---|---|---|"]
    for k in ("input_frames", "average_feature", "random_frame", "best_score_frame"):
        lines.append(f"| {k.replace('_', ' ')} | {held['aggregated_closer_than'][k]:.1%} | "
                     f"{held['blurred']['aggregated_closer_than'][k]:.1%} |")
    lines += ["", "| mean squared distance to the other videos (genuine) / other people (impostor) | clean | blurred |",
              "|---|---|---|"]
    for k in ("aggregated", "input_frames", "average_feature", "random_frame", "best_score_frame"):
        c, b = held, held["blurred"]
        lines.append(f"| {k.replace('_', ' ')} | {c['genuine'][k]:.4f} / {c['impostor'][k]:.4f} | "
                     f"{b['genuine'][k]:.4f} / {b['impostor'][k]:.4f} |")
    lines += ["", f"YTF-format verification on held-out windows ({n_pos} genuine + {n_neg} impostor pairs, 10 splits, "
              "N = 10, n_avg = 2, F = dlib-torch:default), 10-fold accuracy % (std):", "",
              "| method | clean | --blur 17 |", "|---|---|---|"]
    for m in ("avg", "aggregator"):
        cells = [f"{100 * results[(m, b)]['accuracy_mean']:.2f} ({100 * results[(m, b)]['accuracy_std']:.2f})"
                 for b in (0, 17)]
        lines.append(f"| {m} | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
