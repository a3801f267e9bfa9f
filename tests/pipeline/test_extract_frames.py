"""``facekit extract-frames`` on a VoxCeleb2-layout fixture: k evenly spaced frames per utterance, detected and
aligned, manifests with identity/video/utterance, meta CSV, resume, shards, a corrupt clip recorded."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facekit.cli.main import main
from facekit.manifests.io import read_manifest
from facekit.pipeline.extract_frames import sample_indices
from tests.conftest import shared


def test_sample_indices_even_and_distinct():
    assert sample_indices(100, 5).tolist() == [10, 30, 50, 70, 90]
    assert sample_indices(3, 5).tolist() == [0, 1, 2]  # short clip: every frame once
    assert sample_indices(7, 1).tolist() == [3]


@pytest.fixture(scope="module")
def vox(tmp_path_factory):
    from facekit.cli.extract import sample_video
    from facekit.video.synth import voxceleb_layout

    root = tmp_path_factory.mktemp("vox")
    voxceleb_layout([sample_video()], root, videos=2, utterances=2)
    (root / "mp4" / "id00000" / "v1" / "00009.mp4").write_bytes(b"\x00" * 1000)  # a corrupt clip
    (root / "meta.csv").write_text("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \nid00000 ,n000001 ,f ,dev \n")
    return root


def test_extract_frames_layout_meta_resume(vox, tmp_path, capsys):
    out = tmp_path / "frames"
    args = ["extract-frames", str(vox), "-o", str(out), "-k", "4", "--meta", str(vox / "meta.csv"), "-q",
            "--device", "cpu", "--min-face-size", "20", "--allow-failures",
                "0.5"]  # one broken clip (of 5; of 2-3 in a shard)
    assert main(args) == 0
    utts = read_manifest(out, "utterances").set_index("utterance_id")
    assert len(utts) == 5
    assert utts.loc["id00000/v1/00009", "status"] == "error" and "not a video" in utts.loc["id00000/v1/00009", "error"]
    ok = utts[utts["status"] == "ok"]
    assert len(ok) == 4 and (ok["vggface2_id"] == "n000001").all() and (ok["split"] == "dev").all()
    frames = read_manifest(out, "frames")
    assert set(frames["video"]) == {"v0", "v1"} and frames["utterance_id"].nunique() == 4
    assert frames.groupby("utterance_id").size().max() <= 4 and len(frames) >= 12  # the sample clip's faces
    for rel in frames["crop_path"]:
        assert Image.open(out / rel).size == (112, 112)
    # frame indices are the evenly spaced ones of each clip
    for uid, g in frames.groupby("utterance_id"):
        assert set(g["frame_index"]) <= set(sample_indices(int(utts.loc[uid, "num_frames"]), 4).tolist())
    assert main(args) == 0
    assert "5 done before" in capsys.readouterr().out
    other_k = [a if a != "4" else "3" for a in args]  # resuming with other settings would mix two kinds of rows
    assert main(other_k) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "made with other settings" in err and "frames_config.json" in err
    # two shards cover the same utterances
    for i in range(2):
        assert main(args[:2] + ["-o", str(tmp_path / "sh"), "--shard", f"{i}/2"] + args[4:]) == 0
    assert sorted(read_manifest(tmp_path / "sh", "utterances")["utterance_id"]) == sorted(utts.index)


@pytest.mark.slow
def test_a_worker_that_dies_leaves_no_crops_of_its_utterance(vox, tmp_path, monkeypatch):
    dead = "id00000/v0/00001"
    monkeypatch.setenv("FACEKIT_CRASH_JOB", dead)
    out = tmp_path / "frames"
    half = out / "crops" / f"{dead}_000001.jpg"  # what the dying worker had written
    half.parent.mkdir(parents=True)
    half.write_bytes(b"crop")
    assert main(["extract-frames", str(vox), "-o", str(out), "-k", "2", "-q", "--device", "cpu", "--workers", "2",
                 "--min-face-size", "20", "--allow-failures", "0.4"]) == 0
    utts = read_manifest(out, "utterances").set_index("utterance_id")
    assert utts.loc[dead, "status"] == "error" and "died" in utts.loc[dead, "error"]
    assert not list(half.parent.glob("00001_*.jpg"))
    assert (utts["status"] == "ok").sum() == 3


def test_bad_layout_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["extract-frames", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no clips found" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_real_talking_heads_voxceleb_fixture(tmp_path):
    from facekit.video.synth import voxceleb_layout

    clips = sorted(shared("video-retalking/examples/face").glob("*.mp4"))[:3]
    voxceleb_layout(clips, tmp_path / "vox", videos=2, utterances=2)
    assert main(["extract-frames", str(tmp_path / "vox"), "-o", str(tmp_path / "f"), "-q", "--device", "cpu"]) == 0
    frames = read_manifest(tmp_path / "f", "frames")
    # one talking head per clip: every sampled frame has its face (3 identities x 2 videos x 2 utterances x 5)
    assert len(frames) == 60 and frames["identity"].nunique() == 3 and (frames["score"] > 0.95).all()
    assert np.all(frames.groupby(["identity", "video"]).size() == 10)


def test_failures_summary_names_its_table_and_unit():
    import pandas as pd

    from facekit.engine.failures import Failures
    from facekit.errors import InputError, InputsFailed

    f = Failures("utterances", "clips")
    f.read(pd.DataFrame({"path": [f"c{i}.mp4" for i in range(7)] + ["ok.mp4"], "status": ["error"] * 7 + ["ok"],
                         "error": ["cannot decode: x"] * 6 + [None, None]}))
    assert f.lines()[0] == "failed: 7" and f.lines()[1] == "  c0.mp4: cannot decode: x"
    assert f.lines()[-1] == "  ... and 2 more (status = 'error' in the utterances manifest)"
    f.now = 3
    f.check(4, 8, allowed=0.9)  # one clip of this run worked, 7 of 8 failed is within the allowed share
    with pytest.raises(InputsFailed, match=r"^7 of 8 clips failed \(first: c0.mp4: cannot decode: x\); every other "
                                           r"result is committed; --allow-failures 0.875 accepts this share$"):
        f.check(4, 8)
    with pytest.raises(InputError, match=r"^all 3 clips failed \(first: c0.mp4: cannot decode: x\)$"):
        f.check(3, 8, allowed=1.0)
