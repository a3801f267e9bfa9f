"""The README's walk-through, run exactly as written (the fenced block after ``<!-- walkthrough -->``), on the
embedded sample alone: no ../shared/data. Then checks that each stage produced what the README says."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import ROOT, walkthrough_commands

pytestmark = pytest.mark.slow  # end-to-end / real media / Ray: the full suite runs it


def test_walkthrough_block_is_facekit_only():
    commands = walkthrough_commands()
    assert len(commands) >= 12 and all(c[0] == "facekit" for c in commands)
    stages = {c[1] for c in commands}
    assert {"extract-sequences", "build", "curate", "train", "extract-frames", "aggregate", "bench"} <= stages


def test_readme_walkthrough_runs_top_to_bottom(walkthrough):
    tmp_path = walkthrough
    demo = json.loads((tmp_path / "out/demo/demo.json").read_text())
    assert len(demo["people"]) == 8 and demo["people_folder"] == 6
    report = json.loads((tmp_path / "out/seq_clean/curation_report.json").read_text())
    kept = pd.read_parquet(tmp_path / "out/seq_clean/manifests/sequences")
    assert len(kept) == 2, report  # the two solo people: everyone of the group shot is in out/ids
    assert (tmp_path / "runs/seqface/model.pt").is_file() and (tmp_path / "runs/aggregator/aggregator.pt").is_file()
    assert json.loads((tmp_path / "runs/aggregator/heldout.json").read_text())["sets"] > 0
    metrics = {}
    for rep in sorted((tmp_path / "reports").iterdir()):
        r = json.loads((rep / "report.json").read_text())
        metrics.setdefault(rep.name.split("-")[0], []).append(r["metrics"])
    assert [m["pairs"] for m in metrics["ytf"]] == [40, 40] and metrics["lfw"][0]["pairs"] == 40
    official, insightface = metrics["ijbc"]
    for rep in (tmp_path / "reports").iterdir():  # every benchmark ran on the demo's protocol files
        assert json.loads((rep / "report.json").read_text())["demo_data"] is True, rep.name
        assert "demo data: numbers mean nothing" in (rep / "report.md").read_text()
    assert official["verification_11"]["pairs"] == insightface["verification_11"]["pairs"] == 64
    for m in (official, insightface):
        one_n = m["identification_1N"]
        assert one_n["G1"]["mated_probes"] == 4 and one_n["G2"]["gallery_templates"] == 4
    assert metrics["lfw"][0]["accuracy_mean"] >= 0.9  # dlib's pretrained model on two halves of one zoom
    # the README's IJB figures are what the two runs print (TAR@1e-4 of 1:1, rank-1 of 1:N, mean of G1 and G2)
    import re

    tar, rank1 = map(float, re.search(r"TAR@1e-4 ([\d.]+)%, rank-1 ([\d.]+)% \(mean of G1 and G2\)",
                                      " ".join((ROOT / "README.md").read_text().split())).groups())
    for m in (official, insightface):
        assert (round(100 * m["verification_11"]["tar_far_0.0001"], 2),
                round(100 * m["identification_1N"]["mean"]["rank1"], 2)) \
            == (tar, rank1), (m["verification_11"], m["identification_1N"]["mean"])



def test_demo_ijb_layouts_hold_the_same_faces(tmp_path):
    """``build demo`` writes one set of IJB-C templates in two layouts; the faces ``bench ijb`` aligns from them
    must be the same (they once differed: grey-padded loose crops and other landmarks made the faces cut by the
    frame's edge score differently, TAR@1e-4 50% official vs 100% insightface with the walk-through model):
    each insightface crop aligned on its shipped landmarks equals the NIST box on the whole frame aligned on
    O-Net's landmarks: exactly for most, within 3/255 mean for the two people whose large faces run off the frame
    (shrinking them blurs the frame's edge into black in a loose crop, into the frame's border in the image)."""
    import numpy as np

    from facekit.bench import ijb
    from facekit.datasets import ijb_files
    from facekit.datasets.demo import build_demo
    from facekit.embed.features import FaceCropper, read_image

    demo = tmp_path / "demo"
    build_demo(demo)
    official = pd.concat([ijb.read_protocol_csv(demo / "ijbc" / "protocols" / f)
                          for f in (*ijb_files.GALLERY_FILES["IJBC"], ijb_files.PROBE_FILES["IJBC"])])
    official["i"] = official.groupby("template").cumcount()
    theirs = ijb.read_insightface_layout(demo / "ijbc_insightface", "ijbc").faces
    theirs["i"] = theirs.groupby("template").cumcount()
    both = official.merge(theirs, on=["template", "media", "i"], validate="one_to_one")
    assert len(both) == len(official) == len(theirs) == 48
    crop = FaceCropper("arcface", 112)
    diffs = []
    for r in both.itertuples():
        a = crop(read_image(demo / "ijbc" / "images" / r.filename_x),
                 box_xyxy=np.array([r.x, r.y, r.x + r.w, r.y + r.h]))
        b = crop(read_image(demo / "ijbc_insightface" / "loose_crop" / r.filename_y),
                 landmarks_5x2=np.asarray(r.landmarks).reshape(5, 2))
        diffs.append(np.abs(a.astype(float) - b.astype(float)).mean())
    assert crop.fallbacks == 0 and np.median(diffs) < 0.01 and max(diffs) < 3.0, np.round(diffs, 2)
