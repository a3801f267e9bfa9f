"""``facekit manifest split | sample | merge`` and lineage on self-made roots."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from facekit.cli.main import main
from facekit.manifests.io import read_manifest
from facekit.manifests.lineage import content_fingerprint
from facekit.manifests.ops import in_val
from facekit.report.grids import HEADER


def _ids(root, n=20):
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / f"p{i:02d}").mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / f"p{i:02d}" / f"{k}.png")


def test_split_is_deterministic_by_group_and_merge_restores(tmp_path, capsys):
    _ids(tmp_path / "in")
    root = tmp_path / "ids"
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(root), "--aligned", "--template", "seqface",
                 "-q"]) == 0
    assert main(["manifest", "split", str(root), "-o", str(tmp_path / "s"), "--val", "0.3", "--seed", "1"]) == 0
    train = read_manifest(tmp_path / "s" / "train", "identities")
    val = read_manifest(tmp_path / "s" / "val", "identities")
    assert set(train["identity"]).isdisjoint(val["identity"]) and len(train) + len(val) == 40
    assert set(val["identity"]) == {f"p{i:02d}" for i in range(20) if in_val(f"p{i:02d}", 1, 0.3)}
    assert (tmp_path / "s" / "val" / val["crop_path"].iloc[0]).is_file()  # crops reached from the new root
    lineage = json.loads((tmp_path / "s" / "val" / "lineage.json").read_text())
    assert lineage["command"] == "manifest split" and lineage["inputs"][0]["fingerprint"] == content_fingerprint(root)
    # the same split again: identical manifests
    assert main(["manifest", "split", str(root), "-o", str(tmp_path / "s2"), "--val", "0.3", "--seed", "1"]) == 0
    assert content_fingerprint(tmp_path / "s2" / "val") == content_fingerprint(tmp_path / "s" / "val")
    merged = tmp_path / "m"
    assert main(["manifest", "merge", str(tmp_path / "s" / "train"), str(tmp_path / "s" / "val"), "-o",
                 str(merged)]) == 0
    back = read_manifest(merged, "identities")
    assert sorted(back["source_path"]) == sorted(read_manifest(root, "identities")["source_path"])
    assert all((merged / p).is_file() for p in back["crop_path"])
    assert main(["manifest", "merge", str(tmp_path / "s" / "val"), str(tmp_path / "s" / "val"), "-o",
                 str(tmp_path / "x")]) == 2
    assert "roots must not overlap" in capsys.readouterr().err
    assert main(["manifest", "sample", str(root), "-n", "3", "-o", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[1] == HEADER + 3 * 72  # the "3 of N shown" line, 3 rows


def test_a_derived_root_never_overwrites_an_input_or_another_root(tmp_path, capsys):
    """split / merge / curate write a new root (one part per table); an --out that is one of the inputs, or that
    holds manifests written another way (an extraction or identity build), is a one-line error, and nothing is
    written; a derived root may be rewritten by the same kind of command."""
    _ids(tmp_path / "in", n=6)
    root = tmp_path / "ids"
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(root), "--aligned", "--template", "seqface",
                 "-q"]) == 0
    before = sorted(p.name for p in root.rglob("*.parquet"))
    assert main(["manifest", "split", str(root), "-o", str(tmp_path / "s"), "--val", "0.5"]) == 0
    halves = [str(tmp_path / "s" / "train"), str(tmp_path / "s" / "val")]
    for out, why in ((halves[0], "is an input root"), (root, "already holds other manifests")):
        capsys.readouterr()
        assert main(["manifest", "merge", *halves, "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--out {out}" in err and why in err, err
    assert sorted(p.name for p in root.rglob("*.parquet")) == before
    assert main(["manifest", "merge", *halves, "-o", str(tmp_path / "m")]) == 0
    assert main(["manifest", "merge", *halves, "-o", str(tmp_path / "m")]) == 0  # a derived root is replaced
    assert len(read_manifest(tmp_path / "m", "identities")) == 12
