"""Curation: the pure decisions against hand-made features, the commands end to end on self-made data, and
on real data: byte-identical John_Shimkus files, a person of the identity set removed from the sequence data."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from facekit.cli.main import main
from facekit.curate import steps
from facekit.manifests.io import read_manifest
from facekit.metrics import l2_normalise
from tests.conftest import shared


def test_overlap_picks_the_best_reference_over_threshold():
    q = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    ref = np.array([[1.0, 0.0], [0.8, 0.6]])
    best, score = steps.overlap(q, ref, 0.9, chunk=2)
    assert best.tolist() == [0, 1, 1] and np.allclose(score, [1.0, 0.6, 0.96])


def test_outliers_use_the_other_members():
    # three faces near (1, 0) and one at (0, 1): its cosine to the mean of the others is 0 -> outlier at 0.5
    f = np.array([[1.0, 0.0], [0.99, 0.1], [0.99, -0.1], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    g = np.array([0, 0, 0, 0, 1, 1])
    out, cos = steps.outliers(f, g, 0.5)
    assert out.tolist() == [False, False, False, True, False, False]  # group 1 has 2 faces: never outliers
    assert cos[3] == pytest.approx(0.0, abs=1e-6)


def test_duplicates_point_at_the_kept_copy():
    f = np.array([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0], [1.0, 0.0]])
    twin, cos = steps.near_duplicates(f, np.array([0, 0, 0, 1]), 0.999)
    assert twin.tolist() == [-1, 0, -1, -1]
    # face 1 vs kept face 0: 1 / |(1, 0.001)|; face 2 (0, 1) vs kept face 0 (face 1 was removed): 0
    assert cos[1] == pytest.approx(1 / np.sqrt(1 + 1e-6), abs=1e-6) and cos[2] == pytest.approx(0.0, abs=1e-7)
    assert np.isnan(cos[0]) and np.isnan(cos[3])  # a group's first face is compared with nothing


def test_near_duplicates_compare_with_kept_faces_only():
    """A head turning in steps of 2 degrees: each frame is a near duplicate of the one before (cos 2deg = 0.99939),
    but only frames within 0.999 (2.56 degrees) of a kept frame go: 0, 2, 4, 6 deg ... stay, 1 in 2 removed.
    Hand-worked: frame 1 (2 deg) vs kept 0 -> 0.99939 >= 0.999 removed; frame 2 (4 deg) vs kept 0 -> cos 4deg =
    0.99756 kept; frame 3 vs kept 2 -> removed ... The old rule (any earlier face) removed all but the first."""
    deg = np.radians(np.arange(0, 20, 2.0))
    f = np.stack([np.cos(deg), np.sin(deg)], 1)
    twin, cos = steps.near_duplicates(f, np.zeros(len(f), int), 0.999)
    assert twin.tolist() == [-1, 0, -1, 2, -1, 4, -1, 6, -1, 8]
    np.testing.assert_allclose(cos[1::2], np.cos(np.radians(2.0)))
    np.testing.assert_allclose(cos[2::2], np.cos(np.radians(4.0)))  # the highest cosine to a kept face
    assert steps.exact_duplicates(["a", "b", "a", "a"], np.array([0, 0, 0, 1])).tolist() == [-1, -1, 0, -1]


def test_centring_and_clusters_and_names(tmp_path):
    rng = np.random.default_rng(0)
    common = np.ones(16) * 3  # a shared direction, as pretrained embedders have
    people = rng.normal(size=(3, 16))
    centres = np.stack([common + people[i] + 0.1 * rng.normal(size=16) for i in (0, 0, 1, 2, 2)])
    raw = l2_normalise(centres) @ l2_normalise(centres).T
    assert raw.min() > 0.5  # strangers look alike before centring
    labels = steps.cluster(steps.centred(centres), 0.6)
    assert labels[0] == labels[1] and labels[3] == labels[4] and len(set(labels)) == 3
    (tmp_path / "lfw-names.txt").write_text("George_W_Bush\t530\nJohn Salley\t1\n")
    assert steps.read_name_list(tmp_path / "lfw-names.txt") == {"george w bush", "john salley"}


def _aligned_ids(root, people=("ann", "bob", "cid"), per=4):
    rng = np.random.default_rng(1)
    for i, p in enumerate(people):
        (root / p).mkdir(parents=True)
        base = rng.integers(0, 255, (112, 112, 3))
        for k in range(per):
            img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / p / f"{k}.png")
    shutil.copy(root / people[0] / "0.png", root / people[0] / "copy.png")  # byte-identical


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from facekit.models import build_backbone
    from facekit.models.checkpoint import save_backbone

    path = tmp_path_factory.mktemp("m") / "m.pt"
    torch.manual_seed(0)
    net = build_backbone("sphereface20", num_features=32, input_size=64, widths=(8, 8, 16, 16))
    save_backbone(path, "sphereface20", {"num_features": 32, "input_size": 64, "widths": [8, 8, 16, 16]}, net,
                  "arcface", 64, 127.5, 128.0, False)
    return f"facekit:{path}"


def test_embed_clean_and_name_lists_end_to_end(tmp_path, model, capsys):
    _aligned_ids(tmp_path / "in")
    ids = tmp_path / "ids"
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(ids), "--aligned", "--template", "seqface",
                 "-q"]) == 0
    assert main(["embed", str(ids), "--table", "identities", "--model", model, "-q", "--device", "cpu"]) == 0
    assert "13 crops of identities embedded" in capsys.readouterr().out
    parts = list((ids / "embeddings").rglob("*.parquet"))
    assert len(parts) == 1
    assert main(["embed", str(ids), "--table", "identities", "--model", model, "-q"]) == 0
    assert list((ids / "embeddings").rglob("*.parquet")) == parts  # cached: nothing recomputed
    out = tmp_path / "clean"
    assert main(["curate", "clean", str(ids), "-o", str(out), "--model", model, "-q", "--outlier", "-1"]) == 0
    df = read_manifest(out, "identities")
    assert len(df) == 12 and "copy" not in " ".join(df["source_path"])
    assert Image.open(out / df["crop_path"].iloc[0]).size == (144, 144)  # crops reached through the new root
    report = (out / "curation_report.md").read_text()
    assert "| exact_duplicate | 1 |" in report and (out / "removed_clean.png").is_file()
    (tmp_path / "names.txt").write_text("Bob\n")
    out2 = tmp_path / "no_bob"
    assert main(["curate", "overlap", str(out), "--names", str(tmp_path / "names.txt"), "-o", str(out2),
                 "--model", model, "-q"]) == 0
    assert sorted(read_manifest(out2, "identities")["identity"].unique()) == ["ann", "cid"]
    assert "lineage.json" in {p.name for p in out2.iterdir()}
    assert main(["curate", "overlap", str(out), "-o", str(out2), "--model", model]) == 2  # nothing to curate against


@pytest.mark.slow
def test_real_duplicate_johns_files(tmp_path):
    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install 'facekit[dlib]')")
    ids = tmp_path / "johns"
    assert main(["build", "identities", str(shared("dlib/examples/johns")), "-o", str(ids), "-q"]) == 0
    out = tmp_path / "clean"
    assert main(["curate", "clean", str(ids), "-o", str(out), "-q", "--outlier", "-1", "--near-duplicate", "1.01"]) == 0
    import json

    rep = json.loads((out / "curation_report.json").read_text())
    assert rep["removed"] == {"exact_duplicate": 1}
    (row,) = [d for d in rep["decisions"] if d["decision"] != "kept"]
    assert row["identity"] == "John_Shimkus" and row["decision"] == "removed: exact_duplicate"
    assert len(rep["decisions"]) == rep["kept"] + 1  # every face has its decision, kept ones too
    a = (shared("dlib/examples/johns") / "John_Shimkus")
    from facekit.provenance import file_digest

    digests = [file_digest(p) for p in sorted(a.iterdir())]
    assert len(digests) - len(set(digests)) == 1  # the one byte-identical pair


@pytest.mark.slow
def test_real_overlap_removes_the_person_in_the_identity_set(tmp_path):
    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install 'facekit[dlib]')")
    deepface = shared("deepface")
    ids = tmp_path / "ids"
    assert main(["build", "identities", str(deepface), "--labels", str(deepface / "identities.csv"), "-o", str(ids),
                 "-q"]) == 0
    clips = [shared("dlib/dlib/test/ffmpeg_data/elon-musk-smoke.gif"),  # deepface identity J_img18
             shared("video-retalking/examples/face/2.mp4")]
    seqs = tmp_path / "seqs"
    assert main(["extract-sequences", *map(str, clips), "-o", str(seqs), "-q", "--min-seq-len", "3"]) == 0
    out = tmp_path / "clean"
    assert main(["curate", "overlap", str(seqs), "--identities", str(ids), "-o", str(out), "-q"]) == 0
    kept = set(read_manifest(out, "sequences")["sequence_id"])
    assert kept == {"2#0"}
    import json

    rep = json.loads((out / "curation_report.json").read_text())
    by_seq = {d["sequence_id"]: d for d in rep["decisions"]}  # every sequence, kept and removed, with its score
    assert set(by_seq) == {"elon-musk-smoke#0", "2#0"}
    assert by_seq["elon-musk-smoke#0"]["matched"] == "J_img18" and by_seq["elon-musk-smoke#0"]["decision"] == \
        f"removed: in {ids.name}" and by_seq["elon-musk-smoke#0"]["cosine"] >= 0.55
    assert by_seq["2#0"]["decision"] == "kept" and by_seq["2#0"]["cosine"] < 0.55
    md = (out / "curation_report.md").read_text()
    assert "| threshold | 0.55 |" in md and "| model | dlib_torch-" in md and "| 2#0 | kept |" in md
    faces = read_manifest(out, "faces")
    assert set(faces["sequence_id"]) == kept and (out / faces["crop_path"].iloc[0]).is_file()


@pytest.mark.slow
def test_real_two_sequences_of_one_person_cluster(tmp_path, monkeypatch):
    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install 'facekit[dlib]')")
    from facekit.report import grids

    drawn = []
    real_grid = grids.sequence_grid
    monkeypatch.setattr(grids, "sequence_grid", lambda *a, **kw: drawn.append(kw) or real_grid(*a, **kw))
    from facekit.video.decode import VideoStream
    from facekit.video.synth import write_video

    clip = shared("video-retalking/examples/face/3.mp4")
    frames = np.concatenate([f for _, f, _ in VideoStream(clip).batches(64)])
    half = len(frames) // 2
    write_video(tmp_path / "v" / "a.mp4", frames[:half], fps=25)  # one person, two "videos"
    write_video(tmp_path / "v" / "b.mp4", frames[half:], fps=25)
    shutil.copy(shared("video-retalking/examples/face/2.mp4"), tmp_path / "v" / "other.mp4")
    seqs = tmp_path / "seqs"
    assert main(["extract-sequences", str(tmp_path / "v"), "-o", str(seqs), "-q"]) == 0
    assert main(["curate", "clusters", str(seqs), "-q"]) == 0
    c = read_manifest(seqs, "sequence_clusters").set_index("sequence_id")["cluster"]
    assert c["a#0"] == c["b#0"] != c["other#0"]
    assert (seqs / "clusters.png").is_file()
    # its labels count the faces each sequence has in the manifest (its rows are only the 16-face centre sample)
    faces = read_manifest(seqs, "faces")["sequence_id"].value_counts()
    kw = drawn[-1]  # the clusters grid (extract-sequences drew its preview before)
    assert kw["counts"] == {f"c{c[s]}: {s}": int(faces[s]) for s in c.index} and faces.max() > 16


def test_centre_sample_is_evenly_spaced_per_group():
    from facekit.curate.run import centre_sample

    rows = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 3 + ["c"] * 7,
                         "i": list(range(10)) + list(range(3)) + list(range(7))})
    got = centre_sample(rows, "g", 4)
    by = {g: d["i"].tolist() for g, d in got.groupby("g")}
    # brute force: first row of each of the k equal slices of 0..n-1
    want = {g: sorted({min(i for i in range(n) if i * 4 // n == s) for s in range(min(4, n))})
            for g, n in (("a", 10), ("b", 3), ("c", 7))}
    assert by == want and by["a"] == [0, 3, 5, 8] and by["b"] == [0, 1, 2]
    assert centre_sample(rows, "g", 0) is rows


def test_clean_records_the_deciding_score_and_counts_per_group(tmp_path, model, capsys):
    """Every removal carries the value it was decided on beside its threshold, and the report and the terminal
    give faces before -> after per group. Thresholds set so that each rule removes something here."""
    import json

    _aligned_ids(tmp_path / "in")
    ids = tmp_path / "ids"
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(ids), "--aligned", "--template", "seqface",
                 "-q"]) == 0
    out = tmp_path / "clean"
    capsys.readouterr()
    assert main(["curate", "clean", str(ids), "-o", str(out), "--model", model, "-q", "--outlier", "0.85",
                 "--near-duplicate", "0.9"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "curation_report.json").read_text())
    dec = pd.DataFrame(report["decisions"])
    near, outl = dec[dec.decision == "removed: near_duplicate"], dec[dec.decision == "removed: outlier"]
    assert len(near) and len(outl)
    assert (near.score >= 0.9).all() and (near.threshold == 0.9).all() and (near.score == near.duplicate_cosine).all()
    assert (outl.score < 0.85).all() and (outl.threshold == 0.85).all() and (outl.score == outl.cosine_to_group).all()
    per = pd.DataFrame(report["per_group"])
    assert per.before.sum() == len(dec) and per.after.sum() == report["kept"]
    assert (per.before - per.after == per.removed).all()
    counts = dec.groupby("identity").decision.apply(lambda d: (d == "kept").sum())
    assert dict(zip(per.identity, per.after)) == counts.to_dict()
    top = per.iloc[0]
    assert f"faces per identity, before -> after: {top.identity} {top.before} -> {top.after}" in printed
    assert "## faces per group, before and after" in (out / "curation_report.md").read_text()


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_talking_heads_keep_their_pose_variety(tmp_path):
    """Two real talking heads (video-retalking 1.mp4, LivePortrait d3.mp4) at the defaults: the near-duplicate
    rule removes only faces within 0.998 of a kept face, and the kept faces span the sequence's whole yaw range
    (measured on all 10 talking heads: 79% of faces kept, yaw spread 102%; the old rule kept 21%)."""
    from facekit.pipeline.extract_sequences import extract_sequences

    extract_sequences([shared("video-retalking/examples/face/1.mp4"),
                       shared("LivePortrait/assets/examples/driving/d3.mp4")], tmp_path / "seq", progress=False)
    res = main(["curate", "clean", str(tmp_path / "seq"), "-o", str(tmp_path / "clean"), "-q", "--device", "cpu"])
    assert res == 0
    import json

    report = json.loads((tmp_path / "clean" / "curation_report.json").read_text())
    dec = pd.DataFrame(report["decisions"])
    near = dec[dec.decision == "removed: near_duplicate"]
    assert (near.score >= 0.998).all()
    faces = read_manifest(tmp_path / "seq", "faces").set_index("crop_path")
    dec["yaw"] = faces.loc[dec.crop_path, "yaw"].to_numpy()
    for seq, d in dec.groupby("sequence_id"):
        kept = d[d.decision == "kept"]
        assert len(kept) >= 0.5 * len(d), seq
        lo, hi = np.percentile(d.yaw, [5, 95])
        assert kept.yaw.min() <= lo and kept.yaw.max() >= hi, seq
