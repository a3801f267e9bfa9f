"""benchmarks/gpu_check.py with --device cpu: every GPU code path it times runs here with tiny settings, and the
report holds a row per step (the figures on a GPU come from a session lent one)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # end-to-end / real media / Ray: the full suite runs it


def test_gpu_check_runs_every_step_on_cpu(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--out",
                           str(tmp_path / "gc")], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gc" / "report.json").read_text())
    steps = [r["step"] for r in report["rows"]]
    assert steps[:3] == ["train seqface resnet27 128px bfloat16", "train seqface iresnet50 112px bfloat16",
                         "train aggregator N=10 112px"]
    assert {"extract-sequences", "bench lfw --bin features"} <= set(steps) and report["failed"] == []
    for r in report["rows"]:
        assert r["per_sec"] > 0, r
    for r in report["rows"][:3]:
        assert r["loader_wait_ms_per_step"] >= 0 and r["workers_to_keep_busy"] >= 0
    assert "| step | per s |" in (tmp_path / "gc" / "report.md").read_text()
