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
from facekit.datasets.layouts import write_ijb_official, write_lfw, write_ytf
from tests.conftest import shared

pytestmark = pytest.mark.slow  # end-to-end / real media / Ray: the full suite runs it


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
    videos, people = {}, []
    for clip in clips:
        person = f"Person_{clip.parent.name}_{clip.stem}"
        people.append(person)
        frames = np.concatenate([f for _, f, _ in VideoStream(clip).batches(64)])
        for v, half in enumerate(np.array_split(np.arange(len(frames)), 2)):  # two "videos" per person
            videos[(person, v)] = [np.asarray(Image.fromarray(frames[i]).resize((200, 200)))
                                   for i in half[np.linspace(0, len(half) - 1, 6).round().astype(int)]]
    pairs = [(s + 1, f"{people[s]}/0", f"{q}/1", same) for s in range(10)
             for q, same in ((people[s], True), (people[(s + 3) % len(people)], False))]
    db, splits = write_ytf(tmp_path, videos, pairs)
    assert main(["bench", "ytf", "--root", str(db), "--splits", str(splits), "--N", "3", "--navg", "2",
                 "--model", "dlib:default", "--subset", "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"),
                 "--device", "cpu"]) == 0
    m = _report(tmp_path / "r")
    assert m["pairs"] == 20 and m["frames_used"] == 20 * 6
    assert m["accuracy_mean"] >= 0.9  # dlib separates these 10 people


def _deepface_by_identity():
    root = shared("deepface")
    ids = pd.read_csv(root / "identities.csv")
    return root, {k: list(g["path"]) for k, g in ids.groupby("identity_id")}


def test_lfw_layout_from_deepface(tmp_path):
    root, people = _deepface_by_identity()
    names = [n for n, paths in people.items() if len(paths) >= 2][:10]
    images = {n: [np.asarray(Image.open(root / rel).convert("RGB")) for rel in paths] for n, paths in people.items()}
    folds = [([(names[f], 1, 2)], [(names[f], 1, names[(f + 1) % len(names)], 1)]) for f in range(10)]
    lfw, pairs = write_lfw(tmp_path, images, folds)
    assert main(["bench", "lfw", "--root", str(lfw), "--pairs", str(pairs), "--model", "dlib:default",
                 "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "--device", "cpu"]) == 0
    assert _report(tmp_path / "r")["accuracy_mean"] >= 0.9


def test_ijbc_layout_from_deepface(tmp_path, detector):
    root, people = _deepface_by_identity()
    names = sorted(people, key=lambda n: (-len(people[n]), n))  # 13 identities, 8 down to 2 photos
    box = {}
    for rel in {r for paths in people.values() for r in paths}:
        d = detector.detect(np.asarray(Image.open(root / rel).convert("RGB"))[None])[0]
        k = int(np.argmax((d.boxes_xyxy[:, 2] - d.boxes_xyxy[:, 0]) * (d.boxes_xyxy[:, 3] - d.boxes_xyxy[:, 1])))
        x1, y1, x2, y2 = d.boxes_xyxy[k]
        box[rel] = (x1, y1, x2 - x1, y2 - y1)
    galleries, probe, tid = ([], []), [], 0
    for s, n in enumerate(names):
        paths = people[n]
        enrolled = s < 12  # subject 12 is never enrolled (open set)
        if enrolled:
            tid += 1
            galleries[s % 2].append((tid, s, paths[0], 0, *box[paths[0]]))
        for m, p in enumerate(paths[1 if enrolled else 0:]):
            tid += 1
            probe.append((tid, s, p, m, *box[p]))
    g_ids = [r[0] for g in galleries for r in g]
    p_ids = [r[0] for r in probe]
    _, protocols = write_ijb_official(tmp_path, "IJBC", {}, galleries, probe, [(a, b) for a in g_ids for b in p_ids])
    assert main(["bench", "ijb", "--root", str(protocols), "--images", str(root), "--model", "dlib:default",
                 "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "--device", "cpu"]) == 0
    m = _report(tmp_path / "r")
    one_n = m["identification_1N"]
    assert one_n["G1"]["mated_probes"] + one_n["G2"]["mated_probes"] == len(p_ids) - len(people[names[12]])
    assert one_n["mean"]["rank1"] >= 0.9
    assert m["verification_11"]["pairs"] == len(g_ids) * len(p_ids) and m["verification_11"]["tar_far_0.1"] >= 0.9
