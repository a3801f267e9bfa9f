"""A small sequences root made here (real schemas, tiny PNG crops), a derived root of it, and a viewer over them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facekit.manifests.io import write_part
from facekit.manifests.lineage import write_derived, write_lineage
from facekit.manifests.schemas import FACES, SEQUENCES, VIDEOS

pytest.importorskip("starlette", reason="facekit view's extra not installed (pip install 'facekit[view]')")


def make_root(root, sequences: int = 30, seed: int = 0):
    """``sequences`` sequences of 2..9 faces in 2 parts, with varied fields; each crop a 16 px PNG of its own."""
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


@pytest.fixture
def roots(tmp_path):
    """(sequences root, a derived root keeping the even sequences, faces, sequences)."""
    src, derived = tmp_path / "seqs", tmp_path / "kept"
    faces, seqs = make_root(src)
    even = seqs["sequence_id"].iloc[::2]
    write_derived(src, derived, {"videos": pd.DataFrame(columns=[c.name for c in VIDEOS.columns]),
                                 "sequences": seqs[seqs["sequence_id"].isin(even)],
                                 "faces": faces[faces["sequence_id"].isin(even)]}, "curate clean", {})
    return src, derived, faces, seqs


@pytest.fixture
def client(roots):
    from starlette.testclient import TestClient

    from facekit.view.server import make_app
    from facekit.view.state import Viewer

    viewer = Viewer([roots[0], roots[1]], reviewer="tester")
    with TestClient(make_app(viewer)) as c:
        c.viewer = viewer
        yield c
