"""facekit manifest compact: few large parts, the same rows, resume and readers unchanged, refused while a writer
holds the root, safe against a kill at any point."""

from __future__ import annotations

import pandas as pd
import pytest

from facekit.cli.main import main
from facekit.errors import InputError
from facekit.manifests.compact import STAGE, compact, finish, writing
from facekit.manifests.io import read_manifest
from facekit.manifests.schemas import FACES, SEQUENCES, VIDEOS
from tests.conftest import make_sequences_root

TABLES = ("videos", "sequences", "faces")


def many_parts(root, groups: int = 9):
    """A root written as ``groups`` flush groups (videos last), as extraction writes it."""
    from facekit.manifests.io import PartWriter

    faces, seqs = make_sequences_root(root / "src", sequences=groups * 2)
    writer = PartWriter(root, "s00000of00001", [FACES, SEQUENCES, VIDEOS])
    for g in range(groups):
        vid = f"v{g}"
        s = seqs.iloc[2 * g:2 * g + 2].assign(video_id=vid)
        writer.add("faces", faces[faces["sequence_id"].isin(s["sequence_id"])].assign(video_id=vid)
                   .to_dict("records"))
        writer.add("sequences", s.to_dict("records"))
        writer.add("videos", [dict(video_id=vid, path=f"{vid}.mp4", status="ok", error=None, num_frames=10, fps=25.0,
                                   duration_sec=0.4, width=64, height=64, vfr=False, num_sequences=2,
                                   num_faces=int(s["num_faces"].sum()), num_detections=0, num_shots=1,
                                   **{f"dropped_{r}": 0 for r in ("score", "size", "blur", "pose", "duplicate",
                                                                  "short_sequence")})])
        writer.flush()
    return {t: read_manifest(root, t) for t in TABLES}


def parts(root, table):
    return sorted(p.name for p in (root / "manifests" / table).glob("*.parquet"))


def test_compact_keeps_every_row_in_order_in_fewer_parts(tmp_path):
    before = many_parts(tmp_path)
    assert len(parts(tmp_path, "faces")) == 9
    assert main(["manifest", "compact", str(tmp_path)]) == 0
    for t in TABLES:
        assert parts(tmp_path, t) == ["s00000of00001-000008.parquet"]  # named after the last group merged
        pd.testing.assert_frame_equal(read_manifest(tmp_path, t), before[t])
    assert not (tmp_path / STAGE).exists()
    from facekit.manifests.check import check_root

    assert check_root(tmp_path) == []  # every table's groups still line up with the commit table's


def test_rows_per_part_bounds_the_parts_and_groups_stay_aligned(tmp_path):
    before = many_parts(tmp_path)
    compact(tmp_path, rows_per_part=25)
    stems = {t: parts(tmp_path, t) for t in TABLES}
    assert stems["faces"] == stems["sequences"] == stems["videos"] and 1 < len(stems["faces"]) < 9
    for t in TABLES:
        pd.testing.assert_frame_equal(read_manifest(tmp_path, t), before[t])
    import pyarrow.parquet as pq

    sizes = [pq.read_metadata(tmp_path / "manifests/faces" / n).num_rows for n in stems["faces"]]
    assert all(n <= 25 or k == 0 for k, n in enumerate(sizes))  # a run starts with one group whatever its size


def test_refused_while_a_writer_holds_the_root_and_the_other_way_round(tmp_path):
    many_parts(tmp_path)
    with writing(tmp_path, "extract-sequences"):
        with pytest.raises(InputError, match="a writer holds this root"):
            compact(tmp_path)
        with writing(tmp_path, "extract-sequences"):  # shards of one root write side by side
            pass
    assert main(["manifest", "compact", str(tmp_path)]) == 0


@pytest.mark.parametrize("kill_after", [0, 1, 2])
def test_a_kill_during_the_renames_is_finished_by_the_next_run(tmp_path, monkeypatch, kill_after):
    import os

    before = many_parts(tmp_path)
    real, moves = os.replace, []

    def dying(a, b):  # killed at the (kill_after+1)-th move of a staged part into its table (3 tables)
        if str(a).endswith(".parquet") and STAGE in str(a):
            moves.append(a)
            if len(moves) > kill_after:
                raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(os, "replace", dying)
    with pytest.raises(KeyboardInterrupt):
        compact(tmp_path)
    monkeypatch.setattr(os, "replace", real)
    assert (tmp_path / STAGE / "plan.json").is_file()
    finish(tmp_path)  # what the next compact or writer does first
    compact(tmp_path)
    for t in TABLES:
        pd.testing.assert_frame_equal(read_manifest(tmp_path, t), before[t])
        assert len(parts(tmp_path, t)) == 1


def test_a_kill_before_the_plan_changes_nothing(tmp_path, monkeypatch):
    import facekit.manifests.compact as c

    before = many_parts(tmp_path)
    names = {t: parts(tmp_path, t) for t in TABLES}
    monkeypatch.setattr(c, "write_json", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        compact(tmp_path)
    assert {t: parts(tmp_path, t) for t in TABLES} == names
    for t in TABLES:
        pd.testing.assert_frame_equal(read_manifest(tmp_path, t), before[t])
