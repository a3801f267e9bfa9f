"""A small sequences root made here (real schemas, tiny PNG crops), a derived root of it, and a viewer over them."""

from __future__ import annotations

import pandas as pd
import pytest

from facekit.manifests.lineage import write_derived
from facekit.manifests.schemas import VIDEOS
from tests.conftest import make_sequences_root


@pytest.fixture
def roots(tmp_path):
    """(sequences root, a derived root keeping the even sequences, faces, sequences)."""
    src, derived = tmp_path / "seqs", tmp_path / "kept"
    faces, seqs = make_sequences_root(src)
    even = seqs["sequence_id"].iloc[::2]
    write_derived(src, derived, {"videos": pd.DataFrame(columns=[c.name for c in VIDEOS.columns]),
                                 "sequences": seqs[seqs["sequence_id"].isin(even)],
                                 "faces": faces[faces["sequence_id"].isin(even)]}, "curate clean", {})
    return src, derived, faces, seqs


@pytest.fixture
def client(roots):
    pytest.importorskip("starlette", reason="facekit view's extra not installed (pip install 'facekit[view]')")
    from starlette.testclient import TestClient

    from facekit.view.server import make_app
    from facekit.view.state import Viewer

    viewer = Viewer([roots[0], roots[1]], reviewer="tester")
    with TestClient(make_app(viewer)) as c:
        c.viewer = viewer
        yield c
