"""extract-sequences end to end on videos the tests make from the embedded sample clip's real faces."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facekit.errors import InputError, Interrupted
from facekit.manifests import read_manifest
from facekit.pipeline import extract_sequences as es
from facekit.pipeline.config import ExtractConfig, FilterConfig
from facekit.video.synth import photo_clip, write_video

SHOT = 12  # frames per shot of the made-up clips
# the group photo's faces are ~30 px: below the default detector size; full detection on every frame
SMALL_FACES = ExtractConfig(min_face_size=20, detect_every=1, filters=FilterConfig(min_face_px=20))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_photos):
    d = tmp_path_factory.mktemp("clips")
    write_video(d / "three_shots.mp4", photo_clip(face_photos, SHOT, (480, 270)), fps=12)
    write_video(d / "group.mp4", photo_clip(face_photos[1:2], SHOT, (480, 270)), fps=12)
    write_video(d / "one.mp4", photo_clip(face_photos[2:3], SHOT, (480, 270)), fps=12)
    return d


def _run(inputs, out, **kw):
    kw.setdefault("progress", False)
    return es.extract_sequences(inputs, out, **kw)


def _tables(out):
    return {t: read_manifest(out, t) for t in ("videos", "sequences", "faces")}


def _sorted(df, keys):
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
def test_sequences_stay_inside_shots_and_crops_are_written(clips, tmp_path):
    summary = _run([clips / "three_shots.mp4"], tmp_path, cfg=SMALL_FACES)
    t = _tables(tmp_path)
    v = t["videos"].iloc[0]
    assert v.status == "ok" and v.num_frames == 3 * SHOT and v.num_shots == 3
    seqs = t["sequences"]
    assert set(seqs.shot_index) == {0, 1, 2}
    for s in seqs.itertuples():
        assert s.first_frame // SHOT == s.last_frame // SHOT == s.shot_index
    faces = t["faces"]
    assert len(faces) == v.num_faces == seqs.num_faces.sum() == summary.faces
    assert faces.groupby("sequence_id").size().min() >= ExtractConfig().filters.min_sequence_length
    for rel in faces.crop_path.sample(5, random_state=0):
        with Image.open(tmp_path / rel) as im:
            assert im.size == (112, 112)
    # the dropped-face counts add up to what the detector saw
    dropped = sum(v[f"dropped_{r}"] for r in ("score", "size", "blur", "pose", "duplicate", "short_sequence"))
    assert dropped + v.num_faces == v.num_detections


def test_group_photo_gives_simultaneous_sequences(clips, tmp_path):
    _run([clips / "group.mp4"], tmp_path, cfg=SMALL_FACES)
    seqs = read_manifest(tmp_path, "sequences")
    assert len(seqs) >= 3
    assert (seqs.first_frame.max() < seqs.last_frame.min())  # all of them are on screen together


def test_detect_every_tracks_between_detector_runs(clips, tmp_path):
    every1 = _run([clips / "one.mp4"], tmp_path / "k1", cfg=ExtractConfig(detect_every=1))
    every3 = _run([clips / "one.mp4"], tmp_path / "k3", cfg=ExtractConfig(detect_every=3))
    f1, f3 = read_manifest(tmp_path / "k1", "faces"), read_manifest(tmp_path / "k3", "faces")
    assert not f1.tracked.any()
    assert f3.tracked.any() and not f3[f3.frame_index % 3 == 0].tracked.any()
    assert abs(every1.faces - every3.faces) <= 2
    # tracked boxes stay within 5% of the box width of what the full detector finds on the same frame
    both = f1.merge(f3[f3.tracked], on="frame_index", suffixes=("_det", "_int"))
    assert len(both) > 0
    width = both.box_x2_det - both.box_x1_det
    assert ((both.box_x1_det - both.box_x1_int).abs() / width).max() < 0.05


def test_tracked_faces_of_several_frames_fill_one_onet_batch(clips, tmp_path, monkeypatch):
    """Between full detections O-Net re-finds tracked faces of as many frames as fill its smallest batch
    (MIN_BATCH patches, padded with blanks otherwise): a lone face takes up to 4 frames a call, never past the
    next key frame; 4 faces or more take one frame a call, what the tracker did frame by frame before."""
    from facekit.detect.mtcnn import MIN_BATCH, MTCNN
    from facekit.pipeline import tracked, video_sequences

    calls = []
    real = MTCNN.refine_many

    def spy(self, frames, frame_index, boxes, square=True):
        if square:  # the tracker's calls (detect's own O-Net pass gives square=False)
            calls.append(np.asarray(frame_index).copy())
        return real(self, frames, frame_index, boxes, square)

    monkeypatch.setattr(MTCNN, "refine_many", spy)
    monkeypatch.setattr(video_sequences, "backfill", lambda *a: [])
    monkeypatch.setattr(tracked, "REFINE_AGAIN", float("inf"))  # first passes only (the test above needs both)
    _run([clips / "one.mp4"], tmp_path / "one", cfg=ExtractConfig(detect_every=8))
    one = [c for c in calls if len(c)]
    assert max(len(c) for c in one) == MIN_BATCH and all(len(c) <= MIN_BATCH for c in one)
    assert all(len(np.unique(c)) == len(c) for c in one)  # one face: one box per frame
    assert all(c.max() - c.min() == len(c) - 1 for c in one)  # consecutive frames
    calls.clear()
    _run([clips / "group.mp4"], tmp_path / "group", cfg=dataclasses.replace(SMALL_FACES, detect_every=4))
    group = [c for c in calls if len(c) >= MIN_BATCH]
    assert group and all(len(np.unique(c)) == 1 for c in group)


def test_faces_the_score_or_size_filter_drops_are_never_aligned(clips, tmp_path, monkeypatch):
    from facekit.pipeline import video_sequences

    aligned = []
    real = video_sequences.align_faces
    monkeypatch.setattr(video_sequences, "align_faces", lambda frames, index, *a: aligned.append(len(index)) or
                        real(frames, index, *a))
    cfg = ExtractConfig(detect_every=8, filters=FilterConfig(min_score=0.998, min_face_px=60))
    _run([clips / "one.mp4"], tmp_path, cfg=cfg)
    v = read_manifest(tmp_path, "videos").iloc[0]
    assert v.dropped_score > 0 and v.num_faces > 0
    assert sum(aligned) == v.num_detections - v.dropped_score - v.dropped_size


@pytest.mark.slow
def test_resume_after_a_kill_equals_an_uninterrupted_run(clips, tmp_path, monkeypatch):
    inputs = [clips]
    _run(inputs, tmp_path / "full", flush_every=1)

    from facekit.pipeline import video_sequences

    real = video_sequences.process_video
    calls = {"n": 0}

    def dies_on_second(path, video_id, root, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # killed mid-video, after writing crops of a sequence the full run never makes
            stray = Path(root) / "crops" / video_id / "0099"
            stray.mkdir(parents=True)
            (stray / "000000.jpg").write_bytes(b"half a video's crop")
            raise KeyboardInterrupt
        return real(path, video_id, root, *a, **kw)

    monkeypatch.setattr(video_sequences, "process_video", dies_on_second)
    with pytest.raises(Interrupted):  # Ctrl-C, after committing the finished videos
        _run(inputs, tmp_path / "resumed", flush_every=1)
    monkeypatch.setattr(video_sequences, "process_video", real)
    first = read_manifest(tmp_path / "resumed", "videos")
    assert len(first) == 1  # one video committed before the kill
    # a kill between the faces part and the videos part leaves an orphan; resume must drop it
    (tmp_path / "resumed/manifests/faces/s00000of00001-000099.parquet").write_bytes(
        (tmp_path / "full/manifests/faces").glob("*.parquet").__next__().read_bytes())
    summary = _run(inputs, tmp_path / "resumed", flush_every=1)
    assert summary.videos_done_before == 1 and summary.videos_processed == 2
    full, resumed = _tables(tmp_path / "full"), _tables(tmp_path / "resumed")
    keys = {"videos": ["video_id"], "sequences": ["sequence_id"], "faces": ["sequence_id", "frame_index"]}
    for name, k in keys.items():
        pd.testing.assert_frame_equal(_sorted(full[name], k), _sorted(resumed[name], k))
    # every crop file on disk is one the faces manifest names: none of the cut-short attempt is left
    on_disk = {str(p.relative_to(tmp_path / "resumed")) for p in (tmp_path / "resumed" / "crops").rglob("*.jpg")}
    assert on_disk == set(resumed["faces"]["crop_path"])
    # a rerun of a finished run does nothing
    again = _run(inputs, tmp_path / "resumed")
    assert again.videos_processed == 0 and again.faces == summary.faces


def test_shards_split_the_corpus(clips, tmp_path):
    ids = [j.video_id for j in es.discover_videos([clips])]
    parts = [[i for i in ids if es.in_shard(i, (k, 3))] for k in range(3)]
    assert sorted(sum(parts, [])) == sorted(ids)
    for k in range(2):
        _run([clips], tmp_path, shard=(k, 2))
    videos = read_manifest(tmp_path, "videos")
    assert sorted(videos.video_id) == sorted(ids)
    with pytest.raises(InputError, match="need 0 <= i < n"):
        es.parse_shard("3/3")


def test_bad_inputs_are_recorded_and_skipped(clips, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("this is not a video")
    data = (clips / "one.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 3])
    rng = np.random.default_rng(0)
    write_video(bad / "noface.mp4", [rng.integers(90, 110, (180, 320, 3), dtype=np.uint8) for _ in range(8)], fps=8)
    frames = photo_clip([Image.fromarray(np.full((270, 480, 3), 128, np.uint8))], 10, (320, 180))
    write_video(bad / "vfr.mp4", frames, fps=10, timestamps_sec=np.cumsum([0, .1, .1, .3, .05, .1, .2, .1, .1, .1]))
    (bad / "good.mp4").write_bytes(data)
    summary = _run([bad], tmp_path / "out")
    v = read_manifest(tmp_path / "out", "videos").set_index("video_id")
    assert v.loc["good", "status"] == "ok"
    for name in ("zero", "text", "truncated"):
        assert v.loc[name, "status"] == "error" and v.loc[name, "error"], name
    # the reason says what the file is, not the decoder's raw text
    assert v.loc["zero", "error"] == "empty file (0 bytes)"
    assert v.loc["text", "error"] == "not a video: a text file (19 bytes, starts 'this is not a video')"
    assert v.loc["truncated", "error"].startswith("damaged or truncated MP4/MOV file (")
    assert v.loc["noface", "status"] == "no_faces"
    assert bool(v.loc["vfr", "vfr"]) and not bool(v.loc["good", "vfr"])
    assert summary.status["error"] == 3
    assert not (tmp_path / "out/crops/truncated").exists()
    skipped = _run([bad / "vfr.mp4"], tmp_path / "skip", cfg=ExtractConfig(skip_vfr=True))
    assert skipped.status == {"skipped_vfr": 1}


def test_changed_settings_on_resume_are_refused(clips, tmp_path):
    _run([clips / "one.mp4"], tmp_path)
    with pytest.raises(InputError, match="made with other settings"):
        _run([clips / "one.mp4"], tmp_path, cfg=ExtractConfig(detect_every=1))


def test_missing_input_is_an_error(tmp_path):
    with pytest.raises(InputError, match="nope.mp4: no such file"):
        es.discover_videos([tmp_path / "nope.mp4"])


@pytest.mark.slow
def test_workers_give_the_same_result(clips, tmp_path):
    _run([clips], tmp_path / "w0")
    _run([clips], tmp_path / "w2", workers=2)
    a, b = _tables(tmp_path / "w0"), _tables(tmp_path / "w2")
    # workers run torch with one thread, this process with two: the same rows, bit for bit
    # (tests/pipeline/test_same_answer.py)
    for t in ("videos", "sequences", "faces"):
        pd.testing.assert_frame_equal(_sorted(a[t], list(a[t].columns[:2])), _sorted(b[t], list(b[t].columns[:2])),
                                      check_exact=True, obj=t)


@pytest.mark.slow
def test_a_worker_that_dies_costs_its_video_not_the_run(clips, tmp_path, monkeypatch):
    """A native crash in a worker (simulated by aborting it) records that video as an error; the others finish."""
    monkeypatch.setenv("FACEKIT_CRASH_JOB", "group")
    half = tmp_path / "out" / "crops" / "group" / "0000"  # what the dying worker had written of its video
    half.mkdir(parents=True)
    (half / "000000.jpg").write_bytes(b"crop")
    summary = _run([clips], tmp_path / "out", workers=2)
    v = read_manifest(tmp_path / "out", "videos").set_index("video_id")
    assert v.loc["group", "status"] == "error" and "worker process died" in v.loc["group", "error"]
    assert not (tmp_path / "out" / "crops" / "group").exists()  # an error row has no crops
    assert set(v.index[v["status"] == "ok"]) == {"one", "three_shots"}
    assert summary.status == {"ok": 2, "error": 1}


def test_extract_default_recipe_is_generated_from_the_code():
    """recipes/extract_default.yaml says it holds the defaults: it is exactly what the code generates, and it
    parses back to the default settings."""
    from facekit.cli.extract import load_settings
    from facekit.pipeline.config import ExtractConfig, default_recipe_text

    path = Path(__file__).resolve().parents[2] / "recipes" / "extract_default.yaml"
    assert path.read_text() == default_recipe_text(), "regenerate: python -m facekit.pipeline.config > " + str(path)
    assert ExtractConfig.from_dict(load_settings(path)) == ExtractConfig()


@pytest.mark.parametrize("yaml_text, message", [
    ("extract:\n  filters:\n    min_scroe: 0.9\n", "extract.filters: unknown setting 'min_scroe' (known: min_score"),
    ("extract:\n  tracker:\n    max_gap: soon\n", "extract.tracker.max_gap: expected int, got 'soon'"),
    ("extract:\n  detect_evry: 3\n", "extract: unknown setting 'detect_evry'"),
])
def test_config_typos_at_any_depth_are_one_line(tmp_path, capsys, yaml_text, message):
    from facekit.cli.main import main

    (tmp_path / "c.yaml").write_text(yaml_text)
    assert main(["extract-sequences", "-c", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(tmp_path / "c.yaml") in err[0], err


@pytest.mark.slow
def test_no_input_and_all_failed_exit_non_zero_with_reasons(tmp_path):
    """An empty folder: one line, exit 2. Only corrupt videos: the summary lists each with its reason, then one
    error line, exit 2; decord's own log lines (written by its C++ code to fd 2) never reach the terminal."""
    import subprocess
    import sys

    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    for i in range(7):
        (tmp_path / "bad" / f"c{i}.mp4").write_bytes(np.random.default_rng(i).bytes(4000))
    run = lambda *a: subprocess.run([sys.executable, "-m", "facekit", "extract-sequences", *a, "-q"],  # noqa: E731
                                    capture_output=True, text=True)
    res = run(str(tmp_path / "empty"), "-o", str(tmp_path / "o1"))
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"facekit: error: {tmp_path / 'empty'}: no videos found (extensions: .avi, .flv, .gif, .m4v, .mkv, .mov, "
        ".mp4, .mpeg, .mpg, .webm, .wmv)"]
    res = run(str(tmp_path / "bad"), "-o", str(tmp_path / "o2"))
    assert res.returncode == 2
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("facekit: error: all 7 videos failed (first: "), res.stderr
    out = res.stdout.splitlines()
    assert "failed: 7" in out and sum(ln.startswith(f"  {tmp_path}") for ln in out) == 5  # the first five
    assert "  ... and 2 more (status = 'error' in the videos manifest)" in out
    assert all(": not a video: no known container signature (first bytes " in ln
               for ln in out if ln.startswith(f"  {tmp_path}"))


def test_a_long_video_moves_a_frame_bar(clips, tmp_path, monkeypatch):
    """In this process (no workers) a second bar counts the frames of the video at hand, per decoded batch, with
    the video's frame count as its total (so it shows an ETA): a one-hour video does not sit at 0/1 for an hour."""
    from tqdm import tqdm as real_tqdm

    bars = []

    class Recording(real_tqdm):
        def __init__(self, *a, **kw):
            super().__init__(*a, **{**kw, "disable": True})
            self.log = []
            bars.append((kw.get("unit"), self.log))

        def reset(self, total=None):
            self.log.append(("total", total))
            super().reset(total)

        def update(self, n=1):
            self.log.append(n)
            super().update(n)

    monkeypatch.setattr(es, "progress_bar", Recording)
    _run([clips / "one.mp4"], tmp_path, progress=True, cfg=ExtractConfig(batch_frames=8))
    frames = read_manifest(tmp_path, "videos")["num_frames"].iloc[0]
    (log,) = [log for unit, log in bars if unit == "frame"]
    assert log == [("total", frames)] + [8] * (frames // 8) + ([frames % 8] if frames % 8 else [])


def test_failed_inputs_exit_3_after_committing_everything(clips, tmp_path, capsys):
    """A script can tell: some inputs failed -> every result committed, the summary printed, then exit 3 with one
    line; --allow-failures SHARE accepts up to that share; a rerun (resume) still reports the earlier failures."""
    from facekit.cli.main import main

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "good.mp4").write_bytes((clips / "one.mp4").read_bytes())
    (inp / "zero.mp4").write_bytes(b"")
    (inp / "notes.mp4").write_text("shot list: take 3\n")
    args = ["extract-sequences", str(inp), "-o", str(tmp_path / "out"), "-q", "--device", "cpu"]
    assert main(args) == 3
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facekit: error: 2 of 3 videos failed (first: ")
    assert "--allow-failures 0.667 accepts this share" in err[0]
    assert "failed: 2" in cap.out and "preview: " in cap.out
    v = read_manifest(tmp_path / "out", "videos").set_index("video_id")
    assert v.loc["good", "status"] == "ok" and v.loc["notes", "error"].startswith("not a video: a text file")
    assert main(args) == 3  # resumed: nothing redone, the failures still count
    assert "0 processed now" in capsys.readouterr().out
    assert main(args + ["--allow-failures", "0.7"]) == 0


@pytest.mark.slow
def test_ctrl_c_saves_the_finished_videos_and_says_how_many(clips, tmp_path, monkeypatch, capsys):
    """Ctrl-C while the third video runs: the two finished ones are committed (even before their flush), the
    message says so, exit 130; the rerun does only the rest."""
    from facekit.cli.main import main

    real = es._worker_run

    def stop_at_third(job):
        if job.video_id == "three_shots":
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(es, "_worker_run", stop_at_third)
    args = ["extract-sequences", str(clips), "-o", str(tmp_path / "out"), "-q", "--device", "cpu",
            "--flush-every", "8", "--min-face-size", "20"]
    assert main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["facekit: interrupted: 2 of 3 videos of shard 0/1 are saved (2 in this run); rerun the same "
                   "command to resume"]
    assert sorted(read_manifest(tmp_path / "out", "videos")["video_id"]) == ["group", "one"]
    monkeypatch.setattr(es, "_worker_run", real)
    assert main(args) == 0
    assert "2 done before, 1 processed now" in capsys.readouterr().out


def test_review_marks_and_a_rerun_of_extraction_stay_apart(clips, tmp_path):
    """facekit view's review table lives beside the extraction's tables: a resumed run that adds a video neither
    reads nor removes it, and the extraction tables are what a run without marks writes."""
    from facekit.manifests.check import check_root
    from facekit.manifests.review import add_mark, current_marks

    out, plain = tmp_path / "o", tmp_path / "plain"
    _run([clips / "three_shots.mp4"], out, cfg=SMALL_FACES)
    first = read_manifest(out, "sequences")["sequence_id"].iloc[0]
    add_mark(out, "sequence", first, reason="two people", reviewer="me")
    marks = sorted((out / "manifests" / "review").iterdir())
    _run([clips / "three_shots.mp4", clips / "one.mp4"], out, cfg=SMALL_FACES)  # resume + one more video
    _run([clips / "three_shots.mp4", clips / "one.mp4"], plain, cfg=SMALL_FACES)
    assert sorted((out / "manifests" / "review").iterdir()) == marks
    assert current_marks(out)[["item_id", "reason"]].values.tolist() == [[first, "two people"]]
    for table, keys in (("sequences", ["sequence_id"]), ("faces", ["sequence_id", "frame_index"])):
        pd.testing.assert_frame_equal(_sorted(read_manifest(out, table), keys), _sorted(read_manifest(plain, table),
                                                                                        keys))
    assert check_root(out) == []


def test_resume_after_compaction_equals_a_plain_run(clips, tmp_path):
    from facekit.manifests.compact import compact

    out, plain = tmp_path / "o", tmp_path / "plain"
    videos = [clips / "three_shots.mp4", clips / "one.mp4", clips / "group.mp4"]
    _run(videos[:2], out, cfg=SMALL_FACES, flush_every=1)
    assert len(list((out / "manifests/videos").glob("*.parquet"))) == 2
    compact(out)
    assert len(list((out / "manifests/videos").glob("*.parquet"))) == 1
    summary = _run(videos, out, cfg=SMALL_FACES, flush_every=1)
    assert summary.videos_done_before == 2
    _run(videos, plain, cfg=SMALL_FACES)
    for table, keys in (("videos", ["video_id"]), ("sequences", ["sequence_id"]),
                        ("faces", ["sequence_id", "frame_index"])):
        pd.testing.assert_frame_equal(_sorted(read_manifest(out, table), keys), _sorted(read_manifest(plain, table),
                                                                                        keys))
