"""Nothing a user made is overwritten: every command that writes a root refuses a root another command made
(one line naming the root and its maker, exit 2, nothing written), for every pair of writer commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from facekit.cli.main import main
from facekit.manifests.owner import MARK, claim_root, root_maker


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, face_photos) -> dict[str, Path]:
    """Real inputs for every writer: a clip, a VoxCeleb2 layout, identity folders, a sequences root, faces."""
    from facekit.cli.extract import sample_video
    from facekit.pipeline.extract_sequences import extract_sequences
    from facekit.video.synth import photo_clip, voxceleb_layout, write_video

    d = tmp_path_factory.mktemp("inputs")
    (d / "videos").mkdir()
    write_video(d / "videos" / "one.mp4", photo_clip(face_photos[2:3], 8, (480, 270)), fps=12)
    voxceleb_layout([sample_video()], d / "vox", videos=1, utterances=1)
    (d / "people" / "p0").mkdir(parents=True)
    face_photos[0].save(d / "people" / "p0" / "a.png")
    extract_sequences([d / "videos"], d / "seq", progress=False)
    return {"videos": d / "videos", "vox": d / "vox", "people": d / "people", "seq": d / "seq",
            "faces": d / "people" / "p0"}


RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# each writer command's arguments, given its --out
WRITERS = {
    "extract-sequences": lambda i, out: ["extract-sequences", str(i["videos"]), "--out", str(out), "-q"],
    "extract-frames": lambda i, out: ["extract-frames", str(i["vox"]), "--out", str(out), "-q"],
    "build identities": lambda i, out: ["build", "identities", str(i["people"]), "--out", str(out), "-q"],
    "curate overlap": lambda i, out: ["curate", "overlap", str(i["seq"]), "--identities", str(i["seq"]), "--out",
                                     str(out), "-q"],
    "curate clean": lambda i, out: ["curate", "clean", str(i["seq"]), "--out", str(out), "-q"],
    "manifest split": lambda i, out: ["manifest", "split", str(i["seq"]), "--out", str(out)],
    "manifest merge": lambda i, out: ["manifest", "merge", str(i["seq"]), str(i["seq"]), "--out", str(out)],
    "aggregate": lambda i, out: ["aggregate", str(i["faces"]), "--model", str(out / "none.pt"), "--out", str(out)],
    "train seqface": lambda i, out: ["train", "seqface", "-r", str(RECIPES / "seqface_small_real.yaml"), "--out",
                                     str(out)],
    "train aggregator": lambda i, out: ["train", "aggregator", "-r", str(RECIPES / "aggregator_small_real.yaml"),
                                        "--out", str(out)],
}


def _listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_refuses_every_other_commands_root(writer, inputs, tmp_path, capsys):
    for maker in WRITERS:
        if maker == writer:
            continue
        root = tmp_path / maker.replace(" ", "_")
        claim_root(root, maker)
        (root / "manifests").mkdir()
        (root / "manifests" / "keep.txt").write_text("the user's work")
        before = _listing(root)
        code = main(WRITERS[writer](inputs, root))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (writer, maker, err)
        assert len(err) == 1 and str(root) in err[0] and f"'facekit {maker}'" in err[0], (writer, maker, err)
        assert _listing(root) == before, (writer, maker)


def test_the_issues_case_extract_into_a_curated_root_and_back(inputs, tmp_path, capsys):
    """Real roots, not marks made by the test: extract-sequences into a `manifest split` root (a derived root,
    lineage.json and all) is refused, and a curated root's maker is read from what that command wrote."""
    assert main(["manifest", "split", str(inputs["seq"]), "--out", str(tmp_path / "split")]) == 0
    derived = tmp_path / "split" / "train"
    assert root_maker(derived) == "manifest split" and root_maker(inputs["seq"]) == "extract-sequences"
    before = _listing(derived)
    assert main(["extract-sequences", str(inputs["videos"]), "--out", str(derived), "-q"]) == 2
    assert "made by 'facekit manifest split'" in capsys.readouterr().err
    assert _listing(derived) == before
    # a root from before the mark existed: its lineage.json names the command
    (derived / MARK).unlink()
    assert root_maker(derived) == "manifest split"
    assert main(["extract-sequences", str(inputs["videos"]), "--out", str(derived), "-q"]) == 2
    # the same command may rerun into its own root (resume)
    assert main(["extract-sequences", str(inputs["videos"]), "--out", str(inputs["seq"]), "-q"]) == 0
