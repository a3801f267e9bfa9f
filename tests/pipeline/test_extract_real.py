"""extract-sequences on the real clips of ../shared/data (skipped when absent)."""

from __future__ import annotations

import pytest

from facekit.manifests import read_manifest
from facekit.pipeline.extract_sequences import extract_sequences
from tests.conftest import SHARED, shared

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]  # real media, end to end: the full suite runs it


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    shared("face_recognition/examples/short_hamilton_clip.mp4")
    out = tmp_path_factory.mktemp("real")
    extract_sequences([SHARED / "face_recognition/examples/short_hamilton_clip.mp4",
                       SHARED / "video-retalking/examples/face",
                       SHARED / "facenet-pytorch/examples/video.mp4"], out, progress=False)
    return {t: read_manifest(out, t) for t in ("videos", "sequences", "faces")}


def test_no_sequence_crosses_a_hamilton_cut(real_run):
    seqs = real_run["sequences"]
    ham = seqs[seqs.video_id == "short_hamilton_clip"]
    assert len(ham) >= 1
    shots = [(0, 19), (20, 81), (82, 210), (211, 274)]
    for s in ham.itertuples():
        lo, hi = shots[s.shot_index]
        assert lo <= s.first_frame <= s.last_frame <= hi, s
    videos = real_run["videos"].set_index("video_id")
    assert videos.loc["short_hamilton_clip", "num_shots"] == 4


@pytest.mark.parametrize("clip", ["1", "2", "3", "4", "5"])
def test_talking_head_gives_one_long_sequence(real_run, clip):
    v = real_run["videos"].set_index("video_id").loc[clip]
    seqs = real_run["sequences"][real_run["sequences"].video_id == clip]
    assert len(seqs) == 1
    s = seqs.iloc[0]
    # spans (nearly) the whole clip; near-duplicate frames are dropped inside it
    assert s.first_frame <= 2 and s.last_frame >= v.num_frames - 5
    assert s.num_faces >= 30


def test_variable_frame_rate_clip_keeps_real_timestamps(real_run):
    v = real_run["videos"].set_index("video_id")
    assert bool(v.loc["1", "vfr"]) and not bool(v.loc["2", "vfr"])
    f = real_run["faces"][real_run["faces"].video_id == "1"].sort_values("frame_index")
    steps = f.timestamp_sec.diff().dropna() / f.frame_index.diff().dropna()
    assert steps.std() > 0.005  # irregular spacing survives into the manifest


def test_walking_people_give_simultaneous_sequences(real_run):
    seqs = real_run["sequences"][real_run["sequences"].video_id == "video"]
    long = seqs[seqs.num_faces >= 20]
    assert len(long) >= 3
    # at least three of them are on screen at the same frame
    overlap = long.first_frame.nlargest(3).min() <= long.last_frame.nsmallest(3).max()
    frame = 50
    on = ((long.first_frame <= frame) & (long.last_frame >= frame)).sum()
    assert overlap and on >= 3
