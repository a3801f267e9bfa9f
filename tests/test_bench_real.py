"""``facekit bench`` on fixtures written in the official formats from the real faces of ../shared/data, scored
with a real pretrained embedder (dlib's ResNet): YTF (talking-head clips as videos), LFW (deepface photos), IJB-C
(deepface photos with MTCNN boxes). Skipped without ../shared/data or dlib."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facekit.cli.main import main
from tests.conftest import shared


@pytest.fixture(autouse=True)
def _needs_dlib():
    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install 'facekit[dlib]')")


def _report(root):
    (rep,) = list(root.iterdir())
    return json.loads((rep / "report.json").read_text())["metrics"]


def test_ytf_layout_from_talking_heads(tmp_path):
    from facekit.video.decode import VideoStream

    clips = sorted(shared("video-retalking/examples/face").glob("*.mp4")) + \
        sorted(shared("LivePortrait/assets/examples/driving").glob("*.mp4"))
    db = tmp_path / "aligned_images_DB"
    people = []
    for clip in clips:
        person = f"Person_{clip.parent.name}_{clip.stem}"
        people.append(person)
        frames = np.concatenate([f for _, f, _ in VideoStream(clip).batches(64)])
        for v, half in enumerate(np.array_split(np.arange(len(frames)), 2)):  # two "videos" per person
            (db / person / str(v)).mkdir(parents=True)
            for k, i in enumerate(half[np.linspace(0, len(half) - 1, 10).round().astype(int)]):
                Image.fromarray(frames[i]).resize((200, 200)).save(db / person / str(v) / f"aligned_detect_{v}.{k}.jpg")
    lines = ["split number, pair number in split, first name, second name, is same:"]
    for s in range(10):
        p, q = people[s], people[(s + 3) % len(people)]
        lines += [f"{s + 1}, 1, {p}/0, {p}/1, 1", f"{s + 1}, 2, {p}/0, {q}/1, 0"]
    (tmp_path / "splits.txt").write_text("\n".join(lines) + "\n")
    assert main(["bench", "ytf", "--root", str(db), "--splits", str(tmp_path / "splits.txt"), "--N", "5", "--navg", "2",
                 "--model", "dlib:default", "--subset", "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"),
                 "--device", "cpu"]) == 0
    m = _report(tmp_path / "r")
    assert m["pairs"] == 20 and m["frames_used"] == 20 * 10
    assert m["accuracy_mean"] >= 0.9  # dlib separates these 10 people


def _deepface_by_identity():
    root = shared("deepface")
    ids = pd.read_csv(root / "identities.csv")
    return root, {k: list(g["path"]) for k, g in ids.groupby("identity_id")}


def test_lfw_layout_from_deepface(tmp_path):
    root, people = _deepface_by_identity()
    names = [n for n, paths in people.items() if len(paths) >= 2][:10]
    lfw = tmp_path / "lfw"
    for n in people:
        (lfw / n).mkdir(parents=True)
        for k, rel in enumerate(people[n], start=1):
            Image.open(root / rel).convert("RGB").save(lfw / n / f"{n}_{k:04d}.jpg")
    lines = ["10 1"]
    for f in range(10):
        a, b = names[f], names[(f + 1) % len(names)]
        lines += [f"{a}\t1\t2", f"{a}\t1\t{b}\t1"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    assert main(["bench", "lfw", "--root", str(lfw), "--pairs", str(tmp_path / "pairs.txt"), "--model", "dlib:default",
                 "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "--device", "cpu"]) == 0
    assert _report(tmp_path / "r")["accuracy_mean"] >= 0.9


def test_ijbc_layout_from_deepface(tmp_path, detector):
    root, people = _deepface_by_identity()
    names = sorted(people, key=lambda n: (-len(people[n]), n))  # 13 identities, 8 down to 2 photos
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT\n"
    box = {}
    for rel in {r for paths in people.values() for r in paths}:
        d = detector.detect(np.asarray(Image.open(root / rel).convert("RGB"))[None])[0]
        k = int(np.argmax((d.boxes_xyxy[:, 2] - d.boxes_xyxy[:, 0]) * (d.boxes_xyxy[:, 3] - d.boxes_xyxy[:, 1])))
        x1, y1, x2, y2 = d.boxes_xyxy[k]
        box[rel] = f"{x1:.0f},{y1:.0f},{x2 - x1:.0f},{y2 - y1:.0f}"
    gal, probe, tid = {"G1": [], "G2": []}, [], 0
    for s, n in enumerate(names):
        paths = people[n]
        enrolled = s < 12  # subject 12 is never enrolled (open set)
        if enrolled:
            tid += 1
            gal["G1" if s % 2 == 0 else "G2"] += [f"{tid},{s},{p},{m},{box[p]}\n" for m, p in enumerate(paths[:1])]
        for m, p in enumerate(paths[1 if enrolled else 0:]):
            tid += 1
            probe.append(f"{tid},{s},{p},{m},{box[p]}\n")
    (tmp_path / "ijbc_1N_gallery_G1.csv").write_text(header + "".join(gal["G1"]))
    (tmp_path / "ijbc_1N_gallery_G2.csv").write_text(header + "".join(gal["G2"]))
    (tmp_path / "ijbc_1N_probe_mixed.csv").write_text(header + "".join(probe))
    g_ids = [int(x.split(",")[0]) for x in gal["G1"] + gal["G2"]]
    p_ids = [int(x.split(",")[0]) for x in probe]
    (tmp_path / "ijbc_11_G1_G2_matches.csv").write_text("".join(f"{a},{b}\n" for a in g_ids for b in p_ids))
    assert main(["bench", "ijb", "--root", str(tmp_path), "--images", str(root), "--model", "dlib:default",
                 "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "--device", "cpu"]) == 0
    m = _report(tmp_path / "r")
    one_n = m["identification_1N"]
    assert one_n["G1"]["mated_probes"] + one_n["G2"]["mated_probes"] == len(p_ids) - len(people[names[12]])
    assert one_n["mean"]["rank1"] >= 0.9
    assert m["verification_11"]["pairs"] == len(g_ids) * len(p_ids) and m["verification_11"]["tar_far_0.1"] >= 0.9
