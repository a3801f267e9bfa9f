"""Shared fixtures. Real media live in ../shared/data (tests using them skip when it is absent); every core
behaviour also has a test on data made here, from the sample clip facekit ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared(rel: str) -> Path:
    """Path of a file in ../shared/data; skips the test with a reason when it is not there."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"real test data not present: {path} (fresh checkout without ../shared/data)")
    return path


def host_reads(monkeypatch, files: tuple[str, ...], step_of, pictures: tuple[str, ...] = ()) -> list:
    """Every read of a tensor's value by the host (item, tolist, bool, float, int, numpy ...) made from ``files``
    outside the functions named in ``pictures`` (previews, written on their own steps): on a GPU each is a sync
    that stalls the host until the device catches up. Returns (step, file, line, how) tuples."""
    import sys

    import torch

    reads = []
    for how in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu"):
        real = getattr(torch.Tensor, how)

        def spy(self, *a, _real=real, _how=how, **k):
            frame = sys._getframe(1)
            name = frame.f_code.co_filename.replace("\\", "/")
            if name.endswith(files) and frame.f_code.co_name not in pictures:
                reads.append((step_of(), name.rsplit("/facekit/", 1)[-1], frame.f_lineno, _how))
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, how, spy)
    return reads


@pytest.fixture(scope="session")
def detector():
    from facekit.detect import MTCNN

    return MTCNN(min_face_size=20)


@pytest.fixture(scope="session")
def sample_frames() -> np.ndarray:
    """All 90 frames (270x480 RGB) of facekit's embedded sample clip: real faces, no download."""
    from facekit.cli.extract import sample_video
    from facekit.video.decode import VideoStream

    stream = VideoStream(sample_video())
    return np.concatenate([f for _, f, _ in stream.batches(32)])


@pytest.fixture(scope="session")
def face_photos(sample_frames) -> list:
    """Three stills with faces (the first frame of each shot of the sample clip, on a grey border so that a
    zoom/pan over them keeps every face in frame) as 600x338 PIL images."""
    from PIL import Image

    photos = []
    for i in (0, 30, 60):
        canvas = Image.new("RGB", (600, 338), (128, 128, 128))
        canvas.paste(Image.fromarray(sample_frames[i]), (60, 34))
        photos.append(canvas)
    return photos


def torchrun_facekit(args: list[str], nproc: int = 2, timeout: int = 300):
    """Run ``facekit ARGS`` under ``torchrun --nproc_per_node=NPROC`` on this machine (gloo on CPU, one thread per
    rank, a free port); returns the CompletedProcess."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={port}", "-m", "facekit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=timeout)


def walkthrough_commands() -> list[list[str]]:
    """The README's walk-through: the fenced block after ``<!-- walkthrough -->``, one command a list of words."""
    import shlex

    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


@pytest.fixture(scope="session")
def walkthrough(tmp_path_factory) -> Path:
    """A folder where the README's walk-through ran top to bottom, exactly as written (once per session: the
    walk-through test and the viewer's browser test look at its roots)."""
    import glob
    import os

    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install 'facekit[dlib]'): curation embeds with it")
    from facekit.cli.main import main

    here, folder = Path.cwd(), tmp_path_factory.mktemp("walkthrough")
    (folder / "recipes").symlink_to(ROOT / "recipes")
    os.chdir(folder)
    try:
        for words in walkthrough_commands():
            args = [a for w in words[1:] for a in (sorted(glob.glob(w)) if "*" in w else [w])]
            quiet = ["--quiet"] if args[0] != "build" and args[:2] != ["bench", "compare"] else []
            assert main(args + quiet) == 0, " ".join(words)
    finally:
        os.chdir(here)
    return folder


def make_sequences_root(root, sequences: int = 30, seed: int = 0):
    """``sequences`` sequences of 2..9 faces in 2 parts, with varied fields; each crop a 16 px PNG of its own."""
    import pandas as pd
    from PIL import Image

    from facekit.manifests.io import write_part
    from facekit.manifests.lineage import write_lineage
    from facekit.manifests.schemas import FACES, SEQUENCES, VIDEOS

    rng = np.random.default_rng(seed)
    faces, seqs = [], []
    for s in range(sequences):
        n = 2 + s % 8
        sid = f"v{s // 10}#{s % 10}"
        for k in range(n):
            path = f"crops/v{s // 10}/{s % 10:04d}/{k:06d}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), (s * 8) % 256, np.uint8)).save(root / path)
            faces.append(dict(sequence_id=sid, video_id=f"v{s // 10}", frame_index=k * 2, timestamp_sec=k / 12.5,
                              box_x1=0.0, box_y1=0.0, box_x2=50.0, box_y2=50.0, landmarks_5x2=np.zeros(10, np.float32),
                              score=0.9 + 0.001 * s, blur=float(rng.uniform(10, 300)), yaw=0.1, roll_deg=0.0,
                              tracked=bool(k % 2), crop_path=path))
        blur = [f["blur"] for f in faces[-n:]]
        seqs.append(dict(sequence_id=sid, video_id=f"v{s // 10}", shot_index=0, first_frame=0, last_frame=2 * n - 2,
                         first_sec=0.0, last_sec=(n - 1) / 12.5, num_faces=n, mean_score=0.9 + 0.001 * s,
                         mean_blur=float(np.mean(blur)), min_blur=float(np.min(blur)), mean_face_px=50.0,
                         mean_abs_yaw=0.01 * s))
    faces, seqs = pd.DataFrame(faces), pd.DataFrame(seqs)
    half = len(seqs) // 2
    first = faces["sequence_id"].isin(seqs["sequence_id"][:half])
    for part, (f, s) in enumerate(((faces[first], seqs[:half]), (faces[~first], seqs[half:]))):
        write_part(root, FACES, f"s00000of00001-{part:06d}", f)
        write_part(root, SEQUENCES, f"s00000of00001-{part:06d}", s)
        write_part(root, VIDEOS, f"s00000of00001-{part:06d}", pd.DataFrame(columns=[c.name for c in VIDEOS.columns]))
    write_lineage(root, "extract-sequences", {"template": "arcface", "crop_size": 112})
    return faces, seqs
