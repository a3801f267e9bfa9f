"""``facekit build identities``: folders or a labels CSV -> identities manifest with stable class indices."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facekit.cli.main import main
from facekit.manifests.io import read_manifest
from tests.conftest import shared


def _tree(root, people=("bob", "alice", "carol"), per=3):
    rng = np.random.default_rng(0)
    for name in people:
        (root / name).mkdir(parents=True)
        for i in range(per):
            Image.fromarray(rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)).save(root / name / f"{i}.jpg")


def test_aligned_folders_stable_indices_errors_and_resume(tmp_path, capsys):
    _tree(tmp_path / "in")
    (tmp_path / "in" / "bob" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    # one unreadable image: everything committed, then exit 3 (a script can tell)
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(out), "--aligned", "--template", "seqface",
                 "-q", "--size", "112"]) == 3
    df = read_manifest(out, "identities")
    assert dict(zip(df["identity"], df["class_index"])) == {"alice": 0, "bob": 1, "carol": 2}
    assert (df["status"] == "ok").sum() == 9
    bad = df[df["status"] == "error"]
    assert list(bad["source_path"]) == ["bob/broken.jpg"] and "unreadable" in bad["error"].iloc[0]
    for rel in df.loc[df["status"] == "ok", "crop_path"]:
        assert Image.open(out / rel).size == (112, 112)
    assert "1 unreadable" in capsys.readouterr().out
    # a rerun resumes (nothing redone), a shard sees a subset with the same indices
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(out), "--aligned", "--template", "seqface",
                 "-q", "--allow-failures", "0.1"]) == 0
    assert "1 chunks resumed" in capsys.readouterr().out
    out2 = tmp_path / "shard"
    for i in range(2):
        main(["build", "identities", str(tmp_path / "in"), "-o", str(out2), "--aligned", "--template", "seqface", "-q",
              "--shard", f"{i}/2"])
    df2 = read_manifest(out2, "identities")
    assert sorted(zip(df2["source_path"], df2["class_index"])) == sorted(zip(df["source_path"], df["class_index"]))


def test_bad_root_and_labels_fail_in_one_line(tmp_path, capsys):
    assert main(["build", "identities", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "l.csv").write_text("file,who\na.jpg,x\n")
    assert main(["build", "identities", str(tmp_path), "--labels", str(tmp_path / "l.csv"), "-o",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facekit: error:") and "l.csv" in err and "'path'" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_real_deepface_identities_detected_and_aligned(tmp_path):
    root = shared("deepface")
    out = tmp_path / "ids"
    assert main(["build", "identities", str(root), "--labels", str(root / "identities.csv"), "-o", str(out), "-q"]) == 0
    df = read_manifest(out, "identities")
    # 61 images of 13 identities (8, 8, 7, 6, 5, 5, 5, 4, 4, 3, 2, 2, 2): every one has a face MTCNN finds
    assert len(df) == 61 and df["identity"].nunique() == 13 and (df["status"] == "ok").all()
    assert sorted(df.groupby("identity").size(), reverse=True) == [8, 8, 7, 6, 5, 5, 5, 4, 4, 3, 2, 2, 2]
    assert (df["score"] > 0.9).all() and Image.open(out / df["crop_path"].iloc[0]).size == (144, 144)


def test_aligned_chips_infer_their_template_and_a_rec_builds_identities(tmp_path, capsys):
    """Issue 24/28: --aligned without --template takes the template the chips' side implies and says so; chips
    that match none are refused in one line. `build identities` reads insightface's train.rec (written by the
    test's own encoder of the published format): one identity per label, arcface 112, for curation against it."""
    from tests.datasets.test_recordio import insightface_set

    _tree(tmp_path / "in")  # 150 px chips: dlib's
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(tmp_path / "a"), "--aligned", "-q"]) == 0
    assert "template: dlib (inferred from the 150 px aligned chips" in capsys.readouterr().out
    small = tmp_path / "small" / "p0"
    small.mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(small / "0.png")
    assert main(["build", "identities", str(tmp_path / "small"), "-o", str(tmp_path / "b"), "--aligned", "-q"]) == 2
    assert "aligned chips of 64x64 px match no template" in capsys.readouterr().err
    insightface_set(tmp_path / "train.rec")
    assert main(["build", "identities", str(tmp_path / "train.rec"), "-o", str(tmp_path / "rec"), "-q"]) == 0
    assert "template: arcface (inferred from the 112 px" in capsys.readouterr().out
    df = read_manifest(tmp_path / "rec", "identities")
    assert df["class_index"].tolist() == [0, 0, 1, 1, 1, 2] and (df["status"] == "ok").all()
    assert df["source_path"].tolist()[:2] == ["train/0000000/1", "train/0000000/2"]
    assert Image.open(tmp_path / "rec" / df["crop_path"].iloc[0]).size == (112, 112)
    assert (tmp_path / "rec" / "identities_preview.png").is_file()


def test_resume_after_compaction_redoes_nothing(tmp_path):
    import pandas as pd

    from facekit.datasets.identities import build_identities
    from facekit.manifests.compact import compact

    _tree(tmp_path / "in", people=("ann", "bob", "cid", "dan", "eve"), per=2)
    out = tmp_path / "out"

    def build():
        return build_identities(tmp_path / "in", out, template="arcface", aligned=True, chunk=2, progress=False)

    assert build().chunks_done_before == 0
    before = read_manifest(out, "identities").sort_values("source_path").reset_index(drop=True)
    assert len(list((out / "manifests/identities").glob("*.parquet"))) == 3
    compact(out)
    assert len(list((out / "manifests/identities").glob("*.parquet"))) == 1
    assert build().chunks_done_before == 3
    after = read_manifest(out, "identities").sort_values("source_path").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
