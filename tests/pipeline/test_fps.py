"""Issue 25: a sampling rate. --fps F detects and tracks on the first frame of every 1/F second of video time;
the manifests keep the video's own frame indices and timestamps."""

from __future__ import annotations

import numpy as np

import facekit
from facekit.cli.main import main
from facekit.manifests.io import read_manifest
from facekit.pipeline.batches import sample_rate


def _batches(stamps: np.ndarray, size: int):
    for s in range(0, len(stamps), size):
        index = np.arange(s, min(s + size, len(stamps)))
        frames = np.zeros((len(index), 2, 2, 3), np.uint8) + index[:, None, None, None].astype(np.uint8)
        yield index, frames, stamps[index]


def test_sampling_keeps_the_first_frame_of_each_interval_across_batches():
    stamps = np.arange(50) / 25.0  # 2 s at 25 fps
    out = list(sample_rate(_batches(stamps, 7), 5.0))
    used = np.concatenate([u for u, *_ in out])
    orig = np.concatenate([o for _, o, *_ in out])
    assert orig.tolist() == list(range(0, 50, 5)) and used.tolist() == list(range(10))
    frames = np.concatenate([f for *_, f, _ in out])
    assert (frames[:, 0, 0, 0] == orig).all()  # each kept frame travels with its index
    # an irregular (variable frame rate) clip: one frame per 1/fps of its own timestamps
    vfr = np.cumsum(np.r_[0, np.random.default_rng(0).uniform(0.01, 0.09, 99)])
    kept = np.concatenate([o for _, o, *_ in sample_rate(_batches(vfr, 16), 4.0)])
    slots = np.floor(vfr[kept] * 4.0 + 1e-9)
    assert len(set(slots)) == len(kept) == len(set(np.floor(vfr * 4.0 + 1e-9)))
    assert np.concatenate([o for _, o, *_ in sample_rate(_batches(stamps, 7), None)]).tolist() == list(range(50))


def test_fps_on_the_sample_clip_keeps_real_indices_and_timestamps(tmp_path):
    native, sampled = tmp_path / "native", tmp_path / "fps10"
    assert main(["extract-sequences", "-o", str(native), "-q"]) == 0
    assert main(["extract-sequences", "-o", str(sampled), "-q", "--fps", "10"]) == 0
    a, b = read_manifest(native, "faces"), read_manifest(sampled, "faces")
    fps = float(read_manifest(native, "videos")["fps"].iloc[0])
    assert len(b) > 0 and len(b) < len(a)
    slot = np.floor(b["timestamp_sec"].to_numpy() * 10 + 1e-9)
    for _, g in b.groupby("sequence_id"):  # one face per 0.1 s of video time in a sequence
        s = np.floor(g["timestamp_sec"].to_numpy() * 10 + 1e-9)
        assert len(set(s)) == len(s)
    idx = b["frame_index"].to_numpy()
    first_of_slot = (idx == 0) | (np.floor((idx - 1) / fps * 10 + 1e-9) < slot)  # the frame before is an earlier slot
    assert first_of_slot.all()
    np.testing.assert_allclose(b["timestamp_sec"], b["frame_index"] / fps, atol=1e-3)  # the video's own stamps
    assert (read_manifest(sampled, "videos")["num_frames"] == read_manifest(native, "videos")["num_frames"]).all()
    assert facekit.ExtractConfig(fps=10.0).fps == 10.0


def test_full_detections_keep_their_spacing_in_video_time_when_sampling():
    """``detect_every`` counts the video's own frames: with --fps the detector runs as often in video time."""
    from facekit.pipeline.batches import key_interval
    from facekit.pipeline.config import ExtractConfig

    assert key_interval(ExtractConfig(), 25.0) == 8
    assert key_interval(ExtractConfig(fps=10), 25.0) == 3  # 8 / 25 s = 0.32 s -> every 3rd frame at 10 fps
    assert key_interval(ExtractConfig(fps=5), 25.0) == 2
    assert key_interval(ExtractConfig(fps=1), 25.0) == 1  # never less than every used frame
    assert key_interval(ExtractConfig(fps=30), 25.0) == 8  # a rate above the video's samples nothing
    assert key_interval(ExtractConfig(fps=10, detect_every=4), 0.0) == 4  # unknown frame rate: as given
