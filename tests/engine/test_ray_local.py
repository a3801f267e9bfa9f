"""The Ray engine on a local Ray started for the run (no address): extract-frames, build identities and embed
write what the local engine writes. (A module of its own: while the two-node test cluster of test_ray_engine.py
runs, Ray's address resolution would join it.)"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'facekit[ray]')")

from facekit.engine.local import Engine  # noqa: E402
from facekit.manifests import read_manifest  # noqa: E402
from tests.engine.test_ray_engine import LOCAL, _assert_same, _tables  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end / real media / Ray: the full suite runs it


def test_local_ray_frames_identities_and_embeddings_equal_the_local_engine(tmp_path, face_photos):
    """extract-frames, build identities and embed on a Ray started for the run (no address)."""

    from facekit.cli.extract import sample_video
    from facekit.curate.embeddings import embed_crops
    from facekit.datasets.identities import build_identities
    from facekit.embed.extractors import load_extractor
    from facekit.pipeline.extract_frames import FramesConfig, extract_frames
    from facekit.video.synth import voxceleb_layout

    vox = tmp_path / "vox"
    voxceleb_layout([sample_video()], vox, videos=1, utterances=2)
    people = tmp_path / "people"
    for i, photo in enumerate(face_photos[:3]):
        (people / f"p{i}").mkdir(parents=True)
        photo.save(people / f"p{i}" / "a.png")
    cfg = FramesConfig(frames_per_utterance=3, min_face_size=20)
    engine = Engine("ray", workers=2)
    for name, eng in (("local", LOCAL), ("ray", engine)):
        extract_frames(vox, tmp_path / name, cfg, progress=False, engine=eng)
        build_identities(people, tmp_path / f"{name}-ids", template="arcface", progress=False, engine=eng)
    assert engine.stats.workers == 2 and len(engine.stats.nodes) == 1  # the last run's figures
    _assert_same(_tables(tmp_path / "local", ("utterances", "frames")),
                 _tables(tmp_path / "ray", ("utterances", "frames")))
    _assert_same(_tables(tmp_path / "local-ids", ("identities",)), _tables(tmp_path / "ray-ids", ("identities",)))

    import torch

    from facekit.models.iresnet import iresnet

    torch.manual_seed(0)
    torch.save(iresnet("iresnet18", num_features=64).state_dict(), tmp_path / "backbone.pth")
    spec = f"iresnet18:{tmp_path / 'backbone.pth'}"
    ext = load_extractor(spec)
    rows = read_manifest(tmp_path / "local", "frames")["crop_path"].tolist()
    here = embed_crops(tmp_path / "local", rows, ext, batch=4, progress=False)
    there = embed_crops(tmp_path / "ray", rows, ext, batch=4, progress=False, engine=Engine("ray", workers=2),
                        spec=spec)
    np.testing.assert_allclose(here, there, atol=1e-5)
