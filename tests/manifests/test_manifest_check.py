"""``facekit manifest check ROOT [--repair]``: a corrupt part of each table is found, repair removes its flush
group from every table, and rerunning the writer redoes exactly those inputs, giving the undamaged root back."""

from __future__ import annotations

from pathlib import Path

import pytest

from facekit.cli.main import main
from facekit.manifests.io import table_dir
from tests.pipeline.test_same_answer import assert_same, snapshot


def _corrupt(part: Path) -> None:
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])  # a half-copied file


def _check(root: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["manifest", "check", str(root), *extra])
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_photos):
    from facekit.video.synth import photo_clip, write_video

    d = tmp_path_factory.mktemp("clips")
    for name, photos in (("a", face_photos[:1]), ("b", face_photos[1:2]), ("c", face_photos[2:3])):
        write_video(d / f"{name}.mp4", photo_clip(photos, 8, (480, 270)), fps=12)
    return d


def _sequences(clips: Path, out: Path):
    from facekit.pipeline.extract_sequences import extract_sequences

    return extract_sequences([clips], out, flush_every=1, progress=False)  # one video per flush group


@pytest.mark.parametrize("table", ["faces", "sequences", "videos"])
def test_sequences_root_corrupt_part_found_repaired_and_redone(table, clips, tmp_path, capsys):
    root = tmp_path / "seq"
    _sequences(clips, root)
    whole = snapshot(root, ("videos", "sequences", "faces"))
    assert _check(root, capsys) == (0, f"{root}: every part file reads and every flush group is whole\n")
    parts = sorted(table_dir(root, table).glob("*.parquet"))
    assert len(parts) == 3
    _corrupt(parts[1])
    code, out = _check(root, capsys)
    assert code == 1 and f"{parts[1]}: unreadable" in out and "1 damaged part files in 1 flush groups" in out
    code, out = _check(root, capsys, "--repair")
    assert code == 0 and "removed 3 part files of 1 flush groups" in out
    assert all(not (table_dir(root, t) / parts[1].name).exists() for t in ("videos", "sequences", "faces"))
    assert _check(root, capsys)[0] == 0
    summary = _sequences(clips, root)
    assert summary.videos_done_before == 2 and summary.videos_processed == 1
    assert_same(snapshot(root, ("videos", "sequences", "faces")), whole, "after repair")


def test_orphaned_and_missing_parts_are_found(clips, tmp_path, capsys):
    root = tmp_path / "seq"
    _sequences(clips, root)
    videos = sorted(table_dir(root, "videos").glob("*.parquet"))
    videos[0].unlink()  # a killed run: faces and sequences written, videos (the commit) not
    faces = sorted(table_dir(root, "faces").glob("*.parquet"))
    faces[-1].unlink()  # a half-copied root: videos says done, its faces are gone
    code, out = _check(root, capsys)
    assert code == 1
    assert f"{table_dir(root, 'faces') / videos[0].name}: orphaned: no videos part" in out
    assert f"{table_dir(root, 'sequences') / videos[0].name}: orphaned" in out
    assert f"{faces[-1]}: missing: the videos part {faces[-1].stem} says its inputs are done" in out


@pytest.mark.parametrize("table", ["frames", "utterances"])
def test_frames_root_corrupt_part_repaired_and_redone(table, tmp_path, capsys):
    from facekit.cli.extract import sample_video
    from facekit.pipeline.extract_frames import FramesConfig, extract_frames
    from facekit.video.synth import voxceleb_layout

    vox = tmp_path / "vox"
    voxceleb_layout([sample_video()], vox, videos=1, utterances=3)
    root = tmp_path / "frames"
    cfg = FramesConfig(frames_per_utterance=3, min_face_size=20)
    extract_frames(vox, root, cfg, flush_every=1, progress=False)
    whole = snapshot(root, ("utterances", "frames"))
    part = sorted(table_dir(root, table).glob("*.parquet"))[0]
    _corrupt(part)
    assert _check(root, capsys)[0] == 1
    assert _check(root, capsys, "--repair")[0] == 0
    summary = extract_frames(vox, root, cfg, flush_every=1, progress=False)
    assert summary.done_before == 2
    assert_same(snapshot(root, ("utterances", "frames")), whole, "after repair")


def test_identities_root_corrupt_part_repaired_and_redone(tmp_path, face_photos, capsys):
    from facekit.datasets.identities import build_identities

    people = tmp_path / "people"
    for i, photo in enumerate(face_photos):
        (people / f"p{i}").mkdir(parents=True)
        photo.save(people / f"p{i}" / "a.png")
    root = tmp_path / "ids"
    build_identities(people, root, template="arcface", chunk=1, progress=False)
    whole = snapshot(root, ("identities",))
    part = sorted(table_dir(root, "identities").glob("*.parquet"))[2]
    _corrupt(part)
    code, out = _check(root, capsys)
    assert code == 1 and f"{part}: unreadable" in out
    assert _check(root, capsys, "--repair")[0] == 0 and not part.exists()
    summary = build_identities(people, root, template="arcface", chunk=1, progress=False)
    assert summary.chunks_done_before == 2
    assert_same(snapshot(root, ("identities",)), whole, "after repair")
