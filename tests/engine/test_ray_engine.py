"""The Ray engine (``--engine ray``): same manifests as the local engine, on a local Ray and on a two-node cluster
made on this machine with Ray's own test utility; faults (a killed worker, a killed driver, an unreachable
address). Skipped where the ``ray`` extra is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'facekit[ray]')")

from facekit.cli.main import main  # noqa: E402
from facekit.engine.local import Engine  # noqa: E402
from facekit.errors import InputError  # noqa: E402
from facekit.manifests import read_manifest  # noqa: E402
from facekit.pipeline import extract_sequences as es  # noqa: E402
from facekit.video.synth import photo_clip, write_video  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end / real media / Ray: the full suite runs it

# one torch thread per worker on both engines: the local pool's two workers on this 2-core machine, Ray's actors
LOCAL = Engine("local", workers=2)


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes with one CPU each, on this machine (``ray.cluster_utils.Cluster``)."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_photos):
    d = tmp_path_factory.mktemp("clips")
    for name, photos in (("three", face_photos), ("group", face_photos[1:2]), ("one", face_photos[2:3]),
                         ("two", face_photos[:2])):
        write_video(d / f"{name}.mp4", photo_clip(photos, 6, (320, 180)), fps=12)
    (d / "broken.mp4").write_bytes(b"\x00" * 500)
    return d


def _tables(out: Path, tables=("videos", "sequences", "faces")) -> dict[str, pd.DataFrame]:
    key = {"videos": ["video_id"], "sequences": ["sequence_id"], "faces": ["sequence_id", "frame_index"],
           "utterances": ["utterance_id"], "frames": ["utterance_id", "frame_index"],
           "identities": ["source_path"]}
    return {t: read_manifest(out, t).sort_values(key[t]).reset_index(drop=True) for t in tables}


def _assert_same(a: dict, b: dict) -> None:
    for t in a:
        pd.testing.assert_frame_equal(a[t], b[t], check_exact=True, obj=t)


def test_two_node_cluster_writes_the_local_manifests_row_for_row(clips, cluster, tmp_path, capsys):
    es.extract_sequences([clips], tmp_path / "local", progress=False, engine=LOCAL)
    args = ["extract-sequences", str(clips), "-o", str(tmp_path / "ray"), "-q", "--device", "cpu", "--engine", "ray",
            "--ray-address", cluster.address, "--workers", "2", "--flush-every", "2", "--allow-failures", "0.2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ray: 2 nodes, 2 workers" in out and "error 1" in out  # both nodes ran work; broken.mp4 recorded
    _assert_same(_tables(tmp_path / "local"), _tables(tmp_path / "ray"))
    crops = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local" / "crops").rglob("*.jpg"))
    ray_crops = (tmp_path / "ray" / "crops").rglob("*.jpg")
    assert crops and crops == sorted(p.relative_to(tmp_path / "ray") for p in ray_crops)
    # a rerun is a resume: nothing is redone
    assert main(args) == 0
    assert "5 done before, 0 processed now" in capsys.readouterr().out


def test_a_killed_ray_worker_costs_its_video_only(clips, cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEKIT_CRASH_JOB", "group")  # the actor running "group" aborts (twice: first try + retry)
    engine = Engine("ray", workers=2, address=cluster.address)
    summary = es.extract_sequences([clips], tmp_path / "out", progress=False, engine=engine)
    v = read_manifest(tmp_path / "out", "videos").set_index("video_id")
    assert v.loc["group", "status"] == "error" and "Ray worker died" in v.loc["group", "error"]
    assert set(v.index[v["status"] == "ok"]) == {"one", "two", "three"}
    assert engine.stats.workers == 4  # two replacements for the two dead actors
    assert summary.status == {"ok": 3, "error": 2}  # group + broken.mp4


def test_a_killed_driver_resumes_on_rerun(clips, cluster, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "facekit", "extract-sequences", str(clips), "-o", str(out), "-q", "--device", "cpu",
           "--engine", "ray", "--ray-address", cluster.address, "--workers", "1", "--flush-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parts = out / "manifests" / "videos"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(list(parts.glob("*.parquet"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(list(parts.glob("*.parquet")))
    assert 1 <= committed < 5, "the driver was to be killed mid-run"
    summary = es.extract_sequences([clips], out, progress=False,
                                   engine=Engine("ray", workers=2, address=cluster.address))
    assert summary.videos_done_before == committed and summary.videos_processed == 5 - committed
    es.extract_sequences([clips], tmp_path / "local", progress=False, engine=LOCAL)
    _assert_same(_tables(tmp_path / "local"), _tables(out))


def test_unreachable_address_is_one_line(clips, tmp_path, capsys):
    with pytest.raises(InputError, match="127.0.0.1:1: no Ray head answers"):
        es.extract_sequences([clips], tmp_path / "o", progress=False, engine=Engine("ray", address="127.0.0.1:1"))
    args = ["extract-sequences", "-o", str(tmp_path / "o"), "--engine", "ray", "--ray-address", "127.0.0.1:1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facekit: error: --ray-address 127.0.0.1:1") and len(err.splitlines()) == 1
    assert main(["extract-sequences", "-o", str(tmp_path / "o"), "--engine", "spark"]) == 2
    assert "--engine: unknown engine 'spark' (known: local, ray" in capsys.readouterr().err
