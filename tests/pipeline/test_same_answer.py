"""One dataset whatever the hardware: extract-sequences, extract-frames and build identities write the same rows,
ids and crop bytes with 1, 2 or 4 torch threads, in one process or with ``--workers``, and under each SIMD path
torch offers on x86 (``ATEN_CPU_CAPABILITY`` default / avx2 / avx512, read at start-up, so each run is its own
process). Exact equality: no tolerance on which faces exist, nor on their float columns.

The kernels that made answers differ (found clip by clip, see facekit/detect/mtcnn_nets.py, boxes.py and
curate/quality.py): oneDNN's 1x1 convolution (P-Net's heads) sums its channels in another order with one thread,
torch's float32 ``exp`` and bilinear sampler give other last bits per SIMD path, and a one-row variance is split
over the threads."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from facekit.manifests import read_manifest
from tests.conftest import SHARED, shared

pytestmark = pytest.mark.slow  # end-to-end / real media / Ray: the full suite runs it

KEYS = {"videos": ["video_id"], "sequences": ["sequence_id"], "faces": ["sequence_id", "frame_index"],
        "utterances": ["utterance_id"], "frames": ["utterance_id", "frame_index"], "identities": ["source_path"]}

# (torch threads, SIMD path or None for the machine's best, --workers): every thread count and every path at least
# once; the pairing does not matter because each run must equal every other bit for bit
SETTINGS = [(2, None, 0), (4, "avx2", 0), (1, "default", 2)]  # --workers 2: one torch thread per worker
# the real clips (3 min a run): this process's two threads on the machine's best path against two workers of one
# thread each on the default path, the case that differed in the issue (the made clips run every setting)
REAL_SETTINGS = [SETTINGS[0], SETTINGS[2]]

REAL_CLIPS = ["face_recognition/examples/short_hamilton_clip.mp4", "facenet-pytorch/examples/video.mp4",
              *(f"video-retalking/examples/face/{i}.mp4" for i in range(1, 6)),
              *(f"LivePortrait/assets/examples/driving/d{i}.mp4" for i in (3, 12, 18, 19, 20))]


def _supported(capability: str | None) -> bool:
    if capability in (None, "default"):
        return True
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {"avx2": " avx2", "avx512": " avx512f"}[capability] in flags


def run_cli(args: list[str], threads: int, capability: str | None, workers: int = 0) -> None:
    """``facekit ARGS`` in a fresh process with ``threads`` torch threads and the given SIMD path."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability:
        env["ATEN_CPU_CAPABILITY"] = capability
    extra = ["--workers", str(workers)] if workers else []
    code = "import sys; from facekit.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, *args, *extra, "-q", "--device", "cpu"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr


def snapshot(root: Path, tables: tuple[str, ...]) -> dict:
    """Every manifest table (sorted by its key) and the sha256 of every crop file under ``root``."""
    out = {t: read_manifest(root, t).sort_values(KEYS[t]).reset_index(drop=True) for t in tables}
    out["crops"] = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".png")}
    return out


def assert_same(a: dict, b: dict, what: str) -> None:
    for t in a:
        if t == "crops":
            assert a[t] == b[t], f"{what}: crop files differ"
        else:
            pd.testing.assert_frame_equal(a[t], b[t], check_exact=True, obj=f"{what}: {t}")


def _each_setting(make_args, tables: tuple[str, ...], tmp_path: Path, settings=SETTINGS) -> dict[str, dict]:
    """Run the command once per setting this CPU has; each run's snapshot by setting name."""
    runs = {}
    for threads, cap, workers in settings:
        if not _supported(cap):
            continue
        name = f"t{threads}-{cap or 'native'}-w{workers}"
        run_cli(make_args(tmp_path / name), threads, cap, workers)
        runs[name] = snapshot(tmp_path / name, tables)
    return runs


def differing(runs: dict[str, dict]) -> list[str]:
    """How each run differs from the first (empty: every run wrote the same rows and crop bytes)."""
    first, *others = runs
    out = []
    for name in others:
        try:
            assert_same(runs[first], runs[name], f"{first} vs {name}")
        except AssertionError as err:
            out.append(str(err).strip().splitlines()[0])
    return out


def test_made_clips_same_sequences_on_every_thread_count_and_simd_path(tmp_path, face_photos):
    """Any checkout: clips made from the sample clip's faces (three shots, a group, one person)."""
    from facekit.video.synth import photo_clip, write_video

    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "three.mp4", photo_clip(face_photos, 12, (480, 270)), fps=12)
    write_video(clips / "group.mp4", photo_clip(face_photos[1:2], 12, (480, 270)), fps=12)
    runs = _each_setting(lambda out: ["extract-sequences", str(clips), "--out", str(out), "--min-face-size", "20",
                                      "--detect-every", "2"], ("videos", "sequences", "faces"), tmp_path)
    assert len(runs) >= 2 and all(len(r["faces"]) and r["crops"] for r in runs.values())
    assert differing(runs) == []


def test_frames_and_identities_same_on_every_thread_count_and_simd_path(tmp_path, face_photos):
    from facekit.cli.extract import sample_video
    from facekit.video.synth import voxceleb_layout

    vox = tmp_path / "vox"
    voxceleb_layout([sample_video()], vox, videos=1, utterances=2)
    people = tmp_path / "people"
    for i, photo in enumerate(face_photos):
        (people / f"p{i}").mkdir(parents=True)
        photo.save(people / f"p{i}" / "a.png")
        photo.resize((300, 169)).save(people / f"p{i}" / "small.jpg")
    frames = _each_setting(lambda out: ["extract-frames", str(vox), "--out", str(out), "--frames", "4",
                                        "--min-face-size", "20"], ("utterances", "frames"), tmp_path / "frames")
    ids = _each_setting(lambda out: ["build", "identities", str(people), "--out", str(out)], ("identities",),
                        tmp_path / "ids")
    for runs, table in ((frames, "frames"), (ids, "identities")):
        assert len(runs) >= 2 and all(len(r[table]) and r["crops"] for r in runs.values()), table
        assert differing(runs) == [], table


@pytest.mark.shared_data
def test_real_clips_same_dataset_on_every_thread_count_and_simd_path(tmp_path):
    """The 12 real clips of ../shared/data (talking heads, a stage show with cuts, a 1080p street): 1873 faces
    at the defaults, bit for bit the same (before the fix: 113 faces differed between 1 and 2 threads, 95 between
    the default and avx512 paths). All three settings were measured equal on them when the fix was made."""
    shared(REAL_CLIPS[0])
    clips = tmp_path / "clips"
    clips.mkdir()
    for rel in REAL_CLIPS:
        src = SHARED / rel
        (clips / f"{src.parent.name}-{src.name}").symlink_to(src)
    runs = _each_setting(lambda out: ["extract-sequences", str(clips), "--out", str(out)],
                         ("videos", "sequences", "faces"), tmp_path, REAL_SETTINGS)
    assert len(runs) == 2 and all(len(r["faces"]) > 1500 and r["crops"] for r in runs.values())
    assert differing(runs) == []
