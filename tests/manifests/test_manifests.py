import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facekit.errors import ManifestError
from facekit.fsutil import atomic_path
from facekit.manifests import SCHEMAS, read_manifest, write_part
from facekit.manifests.query import manifest_stats, run_query
from facekit.pipeline.video_sequences import empty_video_row


def _videos(n):
    rows = []
    for i in range(n):
        r = empty_video_row(f"v{i}", f"/data/v{i}.mp4")
        r.update(status="ok" if i % 2 else "no_faces", num_frames=10 * i, num_sequences=i)
        rows.append(r)
    return rows


def test_roundtrip_and_parts_are_one_table(tmp_path):
    write_part(tmp_path, SCHEMAS["videos"], "a", _videos(3))
    write_part(tmp_path, SCHEMAS["videos"], "b", _videos(2))
    df = read_manifest(tmp_path, "videos")
    assert len(df) == 5 and list(df.columns) == [c.name for c in SCHEMAS["videos"].columns]
    meta = pq.read_schema(tmp_path / "manifests/videos/a.parquet").metadata
    assert meta[b"facekit.schema_version"] == b"1" and meta[b"facekit.table"] == b"videos"
    assert run_query(tmp_path, "SELECT sum(num_frames) AS n FROM videos")["n"][0] == 30 + 10
    stats = manifest_stats(tmp_path)
    assert stats["tables"]["videos"]["rows"] == 5 and stats["videos_by_status"] == {"no_faces": 3, "ok": 2}


def test_missing_column_names_file_and_column(tmp_path):
    df = pd.DataFrame(_videos(2)).drop(columns=["fps"])
    path = tmp_path / "manifests/videos/bad.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(df), path)
    with pytest.raises(ManifestError, match=r"bad\.parquet: column 'fps' is missing"):
        read_manifest(tmp_path, "videos")


def test_wrong_type_and_not_parquet(tmp_path):
    df = pd.DataFrame(_videos(2))
    df["num_frames"] = df["num_frames"].astype(str)
    path = tmp_path / "manifests/videos/typed.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(df), path)
    with pytest.raises(ManifestError, match=r"typed\.parquet: column 'num_frames' has type (large_)?string"):
        read_manifest(tmp_path, "videos")
    path.write_text("not parquet")
    with pytest.raises(ManifestError, match=r"typed\.parquet: not a readable Parquet file"):
        read_manifest(tmp_path, "videos")


def test_newer_schema_version_is_refused(tmp_path):
    table = pa.Table.from_pandas(pd.DataFrame(_videos(1)), schema=SCHEMAS["videos"].arrow, preserve_index=False)
    table = table.replace_schema_metadata({b"facekit.table": b"videos", b"facekit.schema_version": b"99"})
    path = tmp_path / "manifests/videos/new.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    with pytest.raises(ManifestError, match="version 99 is newer"):
        read_manifest(tmp_path, "videos")


def test_rows_that_do_not_fit_the_schema_are_refused(tmp_path):
    rows = _videos(1)
    rows[0]["num_frames"] = "many"
    with pytest.raises(ManifestError, match="videos: rows do not match"):
        write_part(tmp_path, SCHEMAS["videos"], "x", rows)
    assert not list((tmp_path / "manifests/videos").glob("*")) if (tmp_path / "manifests/videos").exists() else True


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_readme_documents_the_current_schemas():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "manifests" / "README.md").read_text()
    for schema in SCHEMAS.values():
        if schema.name in ("videos", "sequences", "faces"):
            assert schema.markdown() in readme, f"manifests/README.md is stale for {schema.name}: regenerate it"


def test_example_manifests_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "manifests" / "examples"
    for name in ("videos", "sequences", "faces"):
        assert len(read_manifest(root, name)) > 0


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os

    from facekit.fsutil import atomic_path

    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    with open(tmp_path / "b.txt", "w") as fh:
        fh.write("x")
    assert os.stat(tmp_path / "a.txt").st_mode == os.stat(tmp_path / "b.txt").st_mode



def test_part_writer_commits_last_and_continues_numbering(tmp_path, monkeypatch):
    from facekit.manifests import io as mio
    from facekit.manifests.schemas import FACES, SEQUENCES, VIDEOS

    order = []
    real = mio.write_part
    monkeypatch.setattr(mio, "write_part", lambda root, schema, name, rows: order.append((schema.name, name))
                        or real(root, schema, name, rows))
    tag = "s00000of00001"
    parts = mio.PartWriter(tmp_path, tag, [FACES, SEQUENCES, VIDEOS])
    parts.flush()
    assert order == [] and parts.pending == 0  # nothing pending: no file
    parts.add("videos", [empty_video_row("a", "a.mp4")])
    parts.flush()
    assert order == [(t, f"{tag}-000000") for t in ("faces", "sequences", "videos")]  # the commit table last
    again = mio.PartWriter(tmp_path, tag, [FACES, SEQUENCES, VIDEOS])  # a resumed run
    again.add("videos", [empty_video_row("b", "b.mp4")])
    again.flush()
    assert order[-1] == ("videos", f"{tag}-000001") and again.pending == 0
    assert read_manifest(tmp_path, "videos")["video_id"].tolist() == ["a", "b"]
